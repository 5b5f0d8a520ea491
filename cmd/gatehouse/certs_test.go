package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/client"
	"gatehouse/provision"
	"gatehouse/store"
)

// startCertsApp runs a server whose database keeps, for two provisioned
// gateways, one certificate expiring in 3 days and one in 60 days, and
// for the first also an older revoked one.
func startCertsApp(t *testing.T) (map[string]string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	a, err := startApp(ctx, appConfig{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "gatehouse.db"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	token, _, err := a.svc.CreateToken(ctx, provision.TokenSpec{Name: "viewer", Role: gatehouse.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ids := map[string]string{"gw-soon": "soonsoonsoon", "gw-later": "laterlaterla"}
	err = a.db.InTx(ctx, func(tx *store.Tx) error {
		for name, id := range ids {
			d := &gatehouse.Device{ID: id, State: gatehouse.StateConfigured, MAC: "02:00:00:00:00:0" + name[3:4], Fingerprint: "fp-" + id}
			if err := tx.CreateDevice(ctx, d, gatehouse.DeviceKey{Fingerprint: d.Fingerprint, KeyType: "ed25519", PublicKey: []byte("pk"), SealKey: []byte("sk")}); err != nil {
				return err
			}
			n := name
			if err := tx.UpdateDevice(ctx, id, store.DeviceUpdate{Name: &n}); err != nil {
				return err
			}
		}
		certs := []gatehouse.DeviceCert{
			{Serial: "01:01", DeviceID: ids["gw-soon"], Origin: gatehouse.CertFromProvision, NotBefore: now.Add(-60 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)},
			{Serial: "01:02", DeviceID: ids["gw-soon"], Origin: gatehouse.CertFromRenewal, NotBefore: now.Add(-27 * 24 * time.Hour), NotAfter: now.Add(3 * 24 * time.Hour)},
			{Serial: "02:01", DeviceID: ids["gw-later"], Origin: gatehouse.CertFromProvision, NotBefore: now, NotAfter: now.Add(60 * 24 * time.Hour)},
		}
		for _, c := range certs {
			c.Fingerprint = "fp-" + c.DeviceID
			if err := tx.AddCertificate(ctx, c); err != nil {
				return err
			}
		}
		return tx.MarkCertRevoked(ctx, "01:01")
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"GATEHOUSE_SERVER": a.server.URL(), "GATEHOUSE_TOKEN": token}, ids
}

func runCertsCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"certs"}, args...), &out, &errOut, func(k string) string { return env[k] })
	if strings.Contains(out.String()+errOut.String(), env["GATEHOUSE_TOKEN"]) {
		t.Errorf("output shows the API token")
	}
	return code, out.String(), errOut.String()
}

func TestCertsExpiringListsOnlyTheSoonOne(t *testing.T) {
	t.Parallel()
	env, ids := startCertsApp(t)
	code, out, errOut := runCertsCLI(t, env, "expiring")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("want a header and one row:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 7 || f[0] != "gw-soon" || f[1] != ids["gw-soon"] || f[3] != "01:02" || f[5] != "in" || f[6] != "2" && f[6] != "3" {
		t.Errorf("row %q: want gw-soon's 01:02 expiring in about 3 days", lines[1])
	}
	// A wider horizon takes the other gateway in too, as JSON.
	code, out, errOut = runCertsCLI(t, env, "expiring", "--within", "90d", "-o", "json")
	var got client.ExpiringCerts
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("exit %d, %s\n%s", code, errOut, out)
	}
	if got.Within != "90d" || len(got.Certificates) != 2 || got.Certificates[0].Serial != "01:02" || got.Certificates[1].Name != "gw-later" {
		t.Errorf("within 90d = %+v; want 01:02 then gw-later's", got)
	}
}

func TestCertsListShowsRenewals(t *testing.T) {
	t.Parallel()
	env, ids := startCertsApp(t)
	code, out, errOut := runCertsCLI(t, env, "list", ids["gw-soon"])
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "01:02") || !strings.Contains(lines[1], "renewal") ||
		!strings.Contains(lines[2], "01:01") || !strings.Contains(lines[2], "revoked") {
		t.Fatalf("want the renewal, then the revoked provisioning certificate:\n%s", out)
	}
	if code, _, errOut := runCertsCLI(t, env, "list", "nosuchdevice"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown device: exit %d, %s", code, errOut)
	}
}

func TestCertsUsage(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GATEHOUSE_TOKEN": "gat_x"}
	for _, args := range [][]string{{"expiring", "--within", "soon"}, {"expiring", "--within", "0d"}, {"list"}, {"nosuch"}} {
		if code, _, _ := runCertsCLI(t, env, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCertsCLI(t, env, "help"); code != 0 || !strings.Contains(out, "expiring [--within 14d]") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}
