package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatehouse/agent"
)

// unitLine returns every value of key in the unit file.
func unitValues(key string) []string {
	var vals []string
	for _, line := range strings.Split(string(AgentUnit), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

// TestUnitMatchesAgent ties the unit to the agent's own defaults: the
// conditions name the files the agent writes, and the exit codes it does
// not retry are the agent's permanent ones.
func TestUnitMatchesAgent(t *testing.T) {
	name := filepath.Join(agent.DefaultOutDir, agent.FileDeviceName)
	want := []string{"|!" + name, "|" + name + agent.PendingSuffix}
	if got := unitValues("ConditionPathExists"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ConditionPathExists %v, want %v", got, want)
	}
	if got := unitValues("ExecStart"); len(got) != 1 || got[0] != "/usr/bin/gatehouse-agent --config "+agent.DefaultConfigFile {
		t.Errorf("ExecStart %v", got)
	}
	codes := fmt.Sprint(agent.ExitConfig, " ", agent.ExitKey, " ", agent.ExitDismissed)
	if got := unitValues("RestartPreventExitStatus"); len(got) != 1 || got[0] != codes {
		t.Errorf("RestartPreventExitStatus %v, want %s", got, codes)
	}
	for key, want := range map[string]string{"Restart": "on-failure", "After": "network-online.target mender-authd.service mender-client.service", "WantedBy": "multi-user.target"} {
		if got := unitValues(key); len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", key, got, want)
		}
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit; keys newer than
// the host's systemd are allowed (they are ignored with a warning).
func TestUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not on PATH")
	}
	dir := t.TempDir()
	unit := strings.ReplaceAll(string(AgentUnit), "/usr/bin/gatehouse-agent", "/bin/true")
	path := filepath.Join(dir, "gatehouse-agent.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	newer := regexp.MustCompile(`Unknown key '(RestartSteps|RestartMaxDelaySec)'`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !newer.MatchString(line) {
			t.Errorf("systemd-analyze: %s", line)
		}
	}
	if err != nil && !t.Failed() {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestYoctoLayer checks the layer's recipes point at files that exist and
// install what the unit expects.
func TestYoctoLayer(t *testing.T) {
	dir := "yocto/meta-gatehouse/recipes-gatehouse/gatehouse-agent"
	read := func(p string) string {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	layer := read("yocto/meta-gatehouse/conf/layer.conf")
	for _, want := range []string{`BBFILE_COLLECTIONS += "gatehouse"`, "LAYERSERIES_COMPAT_gatehouse"} {
		if !strings.Contains(layer, want) {
			t.Errorf("layer.conf lacks %s", want)
		}
	}
	inc := read(filepath.Join(dir, "gatehouse-agent.inc"))
	for _, want := range []string{"inherit systemd", `SYSTEMD_SERVICE:${PN} = "gatehouse-agent.service gatehouse-agent-renew.timer"`, "${sysconfdir}/gatehouse/agent.conf"} {
		if !strings.Contains(inc, want) {
			t.Errorf("gatehouse-agent.inc lacks %s", want)
		}
	}
	git := read(filepath.Join(dir, "gatehouse-agent_git.bb"))
	for _, p := range regexp.MustCompile(`\$\{S\}/src/\$\{GO_IMPORT\}/(\S+)"`).FindAllStringSubmatch(git, -1) {
		if _, err := os.Stat(filepath.Join("..", p[1])); err != nil {
			t.Errorf("gatehouse-agent_git.bb installs %s: %v", p[1], err)
		}
	}
	for _, want := range []string{"require gatehouse-agent.inc", "inherit go-mod", `GO_INSTALL = "${GO_IMPORT}/cmd/gatehouse-agent"`, `CGO_ENABLED = "0"`} {
		if !strings.Contains(git, want) {
			t.Errorf("gatehouse-agent_git.bb lacks %s", want)
		}
	}
	bin := read(filepath.Join(dir, "gatehouse-agent-bin_1.0.bb"))
	for _, want := range []string{"require gatehouse-agent.inc", "/usr/lib/systemd/system/gatehouse-agent.service", "/etc/gatehouse/agent.conf", "/usr/bin/gatehouse-agent"} {
		if !strings.Contains(bin, want) {
			t.Errorf("gatehouse-agent-bin_1.0.bb lacks %s", want)
		}
	}
}
