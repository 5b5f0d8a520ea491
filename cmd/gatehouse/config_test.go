package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/config"
	"gatehouse/sandbox"
	"gatehouse/simulate"
)

// envFile writes the sandbox's settings as a config file, the way an
// operator would write theirs.
func envFile(t *testing.T, sims *sandbox.Simulators, vaultToken string) string {
	t.Helper()
	c := sims.Config()
	dps := c.DPS.ConnectionString
	hub := c.Hubs.Hubs[0]
	tokenFile := filepath.Join(t.TempDir(), "mender-token")
	os.WriteFile(tokenFile, []byte(c.Mender.Token+"\n"), 0o600)
	lines := []string{
		"GATEHOUSE_MENDER_URL=" + c.Mender.URL,
		"GATEHOUSE_MENDER_TOKEN_FILE=" + tokenFile,
		"GATEHOUSE_DPS_CONNECTION_STRING=HostName=" + dps.HostName + ";SharedAccessKeyName=" + dps.SharedAccessKeyName + ";SharedAccessKey=" + dps.SharedAccessKey,
		"GATEHOUSE_DPS_ID_SCOPE=" + c.DPS.IDScope,
		"GATEHOUSE_DPS_ENDPOINT=" + c.DPS.Endpoint,
		"GATEHOUSE_IOTHUB_CONNECTION_STRINGS=HostName=" + hub.HostName + ";SharedAccessKeyName=" + hub.SharedAccessKeyName + ";SharedAccessKey=" + hub.SharedAccessKey,
		"GATEHOUSE_IOTHUB_ENDPOINTS=" + hub.HostName + "=" + c.Hubs.Endpoints[hub.HostName],
		"GATEHOUSE_VAULT_ADDR=" + c.Vault.Addr,
		"GATEHOUSE_VAULT_ROLE=" + c.Vault.Role,
		"GATEHOUSE_VAULT_TOKEN=" + vaultToken,
	}
	path := filepath.Join(t.TempDir(), "gatehouse.env")
	os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	return path
}

func TestConfigCheck(t *testing.T) {
	sims, err := sandbox.Start(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	noEnv := func(string) string { return "" }
	good := envFile(t, sims, sims.Config().Vault.Token)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"config", "check", "--config", good, "--online", "-o", "json"}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	var results []config.CheckResult
	json.Unmarshal(out.Bytes(), &results)
	if len(results) != 5 || results[4].Backend != "oidc" || results[4].Enabled {
		t.Fatalf("results = %+v", results)
	}
	for _, r := range results[:4] {
		if !r.Enabled || r.Online != "ok" {
			t.Errorf("%s: %+v", r.Backend, r)
		}
	}

	bad := envFile(t, sims, "wrong-token")
	out.Reset()
	code := run(context.Background(), []string{"config", "check", "--config", bad, "--online"}, &out, &errOut, noEnv)
	if code != 1 || !strings.Contains(out.String(), "vault") || strings.Contains(out.String(), "wrong-token") {
		t.Fatalf("wrong vault token: exit %d, output:\n%s", code, out.String())
	}
}

func TestConfigCheckRejectsHalfConfiguredBackend(t *testing.T) {
	env := map[string]string{"GATEHOUSE_MENDER_TOKEN": "x", "GATEHOUSE_VAULT_ADDR": "https://vault.example", "GATEHOUSE_VAULT_MODE": "maybe"}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"config", "check"}, &out, &errOut, func(k string) string { return env[k] })
	msg := errOut.String()
	if code != 1 || !strings.Contains(msg, "GATEHOUSE_MENDER_URL") || !strings.Contains(msg, "GATEHOUSE_VAULT_MODE") {
		t.Fatalf("exit %d, stderr:\n%s", code, msg)
	}
}

// config check --online reads the Vault role and refuses one that cannot
// work in the configured mode, naming the setting; a wrong role is an error,
// not "ok".
func TestConfigCheckJudgesTheVaultRole(t *testing.T) {
	def := simulate.DefaultVaultRole() // a new OpenBao role
	sim, err := simulate.NewVaultServer(simulate.VaultServerOptions{RootToken: "root-t0ken", Role: "gateway", RoleConfig: &def})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cases := map[string]struct{ role, mode, want string }{
		"SignWithNewRole": {"gateway", "sign", "use_csr_common_name"},
		"UnknownRole":     {"no-such-role", "issue", "no-such-role"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"GATEHOUSE_VAULT_ADDR": sim.URL, "GATEHOUSE_VAULT_ROLE": tc.role,
				"GATEHOUSE_VAULT_TOKEN": "root-t0ken", "GATEHOUSE_VAULT_MODE": tc.mode}
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"config", "check", "--online"}, &out, &errOut, func(k string) string { return env[k] })
			if code != 1 || !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "root-t0ken") {
				t.Fatalf("exit %d, output:\n%s%s\nwant exit 1 naming %q", code, out.String(), errOut.String(), tc.want)
			}
		})
	}
}
