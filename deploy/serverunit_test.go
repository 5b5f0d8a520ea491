package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const serverUnitPath = "systemd/gatehouse.service"

// serverUnit is the server's unit file with each key's values.
func serverUnit(t *testing.T) (string, map[string][]string) {
	t.Helper()
	b, err := os.ReadFile(serverUnitPath)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	return string(b), keys
}

// TestServerUnitSettings pins what docs/deploy.md promises of the unit: a
// system user, the database in the state directory, migrations before the
// server, and a read-only system.
func TestServerUnitSettings(t *testing.T) {
	_, keys := serverUnit(t)
	want := map[string]string{
		"User": "gatehouse", "StateDirectory": "gatehouse", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"ExecStart": "/usr/bin/gatehouse serve", "ExecStartPre": "/usr/bin/gatehouse migrate --db ${GATEHOUSE_DB}",
		"EnvironmentFile": "-/etc/gatehouse/gatehouse.conf", "CapabilityBoundingSet": "", "UMask": "0077",
	}
	for k, v := range want {
		if got := keys[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	env := strings.Join(keys["Environment"], " ")
	if !strings.Contains(env, "GATEHOUSE_DB=/var/lib/gatehouse/") {
		t.Errorf("Environment %q: the database must be in StateDirectory (/var/lib/gatehouse), the only writable place", env)
	}
	// The environment file comes after the defaults, so it overrides them.
	unit, _ := serverUnit(t)
	if strings.Index(unit, "EnvironmentFile=") < strings.LastIndex(unit, "Environment=GATEHOUSE_") {
		t.Error("EnvironmentFile= must follow the Environment= defaults to override them")
	}
}

// TestServerUnitVerifies runs systemd-analyze on the unit: it must verify,
// and its offline security exposure must stay low.
func TestServerUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not on PATH")
	}
	unit, _ := serverUnit(t)
	path := filepath.Join(t.TempDir(), "gatehouse.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/bin/gatehouse", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for gatehouse.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Skipf("this systemd-analyze gives no offline security score (%v): %s", err, lastLine(out))
	}
	score, perr := strconv.ParseFloat(string(m[1]), 64)
	if perr != nil || score > 2.0 {
		t.Errorf("security exposure %s, want at most 2.0 (systemd-analyze security --offline=yes)", m[1])
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
