package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatehouse/agent"
)

func values(unit []byte, key string) []string {
	var vals []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// TestRenewUnitsMatchAgent ties the renewal service and timer to the
// agent: it runs the renew mode only on a provisioned gateway with a
// certificate, daily, spread out, catching up after downtime.
func TestRenewUnitsMatchAgent(t *testing.T) {
	want := map[string][]string{
		"ExecStart":           {"/usr/bin/gatehouse-agent renew --config " + agent.DefaultConfigFile},
		"Type":                {"oneshot"},
		"ConditionPathExists": {filepath.Join(agent.DefaultOutDir, agent.FileDeviceName), filepath.Join(agent.DefaultOutDir, agent.FileDeviceCert)},
	}
	for key, w := range want {
		if got := values(RenewUnit, key); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("service %s=%v, want %v", key, got, w)
		}
	}
	for key, w := range map[string]string{"OnCalendar": "daily", "Persistent": "true", "RandomizedDelaySec": "6h",
		"Unit": "gatehouse-agent-renew.service", "WantedBy": "timers.target"} {
		if got := values(RenewTimer, key); len(got) != 1 || got[0] != w {
			t.Errorf("timer %s=%v, want %s", key, got, w)
		}
	}
}

// TestRenewUnitsVerify runs systemd-analyze verify on the service and its
// timer together.
func TestRenewUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not on PATH")
	}
	dir := t.TempDir()
	svc := filepath.Join(dir, "gatehouse-agent-renew.service")
	timer := filepath.Join(dir, "gatehouse-agent-renew.timer")
	unit := strings.ReplaceAll(string(RenewUnit), "/usr/bin/gatehouse-agent", "/bin/true")
	if err := os.WriteFile(svc, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(timer, RenewTimer, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", svc, timer).CombinedOutput()
	// The service names gatehouse-agent.service in After=, which is not
	// in the temp dir; systemd only notes that.
	absent := regexp.MustCompile(`gatehouse-agent\.service`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !absent.MatchString(line) {
			t.Errorf("systemd-analyze: %s", line)
		}
	}
	if err != nil && !t.Failed() {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestYoctoInstallsRenewUnits: both recipes install the renewal units, and
// the timer is what systemd enables.
func TestYoctoInstallsRenewUnits(t *testing.T) {
	dir := "yocto/meta-gatehouse/recipes-gatehouse/gatehouse-agent"
	for file, wants := range map[string][]string{
		"gatehouse-agent.inc": {"${systemd_system_unitdir}/gatehouse-agent-renew.service", "${systemd_system_unitdir}/gatehouse-agent-renew.timer",
			"${GATEHOUSE_RENEW_SERVICE_SRC}", "${GATEHOUSE_RENEW_TIMER_SRC}"},
		"gatehouse-agent-bin_1.0.bb": {"/usr/lib/systemd/system/gatehouse-agent-renew.service", "/usr/lib/systemd/system/gatehouse-agent-renew.timer"},
		"gatehouse-agent_git.bb":     {"deploy/systemd/gatehouse-agent-renew.service", "deploy/systemd/gatehouse-agent-renew.timer"},
	} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s lacks %s", file, w)
			}
		}
	}
}
