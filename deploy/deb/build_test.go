package main

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gatehouse/deploy"
)

// TestBuildDeb builds the amd64 package and inspects it with dpkg-deb.
func TestBuildDeb(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and a .deb; skipped in -short mode")
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not on PATH; skipping the .deb inspection")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--arch", "amd64", "--version", "v1.2.3", "--out", out, "--src", "../.."}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	deb := strings.TrimSpace(stdout.String())
	if filepath.Base(deb) != "gatehouse-agent_1.2.3_amd64.deb" {
		t.Fatalf("package %s", deb)
	}
	checkContents(t, dpkgDeb(t, "-c", deb))
	checkControl(t, deb)
	root := t.TempDir()
	dpkgDeb(t, "-x", deb, root)
	checkStatic(t, filepath.Join(root, "usr/bin/gatehouse-agent"))
	if unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/gatehouse-agent.service")); !bytes.Equal(unit, deploy.AgentUnit) {
		t.Error("packaged unit differs from deploy/systemd/gatehouse-agent.service")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("out dir holds %d entries, want the .deb only", len(entries))
	}
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func checkContents(t *testing.T, list string) {
	t.Helper()
	for _, want := range []string{
		"-rwxr-xr-x root/root", "./usr/bin/gatehouse-agent",
		"./usr/lib/systemd/system/gatehouse-agent.service",
		"./usr/lib/systemd/system/gatehouse-agent-renew.service",
		"./usr/lib/systemd/system/gatehouse-agent-renew.timer",
		"./etc/gatehouse/agent.conf",
		"drwx------ root/root         0 1970-01-01 00:00 ./var/lib/gatehouse/",
		"./usr/share/doc/gatehouse-agent/agent.md",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("package contents lack %q:\n%s", want, list)
		}
	}
}

func checkControl(t *testing.T, deb string) {
	t.Helper()
	info := dpkgDeb(t, "-I", deb)
	for _, want := range []string{"Package: gatehouse-agent", "Version: 1.2.3", "Architecture: amd64", "postinst", "prerm", "conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
	if conffiles := dpkgDeb(t, "-I", deb, "conffiles"); strings.TrimSpace(conffiles) != "/etc/gatehouse/agent.conf" {
		t.Errorf("conffiles %q", conffiles)
	}
	if postinst := dpkgDeb(t, "-I", deb, "postinst"); !strings.Contains(postinst, "systemctl enable gatehouse-agent.service") {
		t.Errorf("postinst does not enable the unit:\n%s", postinst)
	}
}

// checkStatic: no interpreter and no shared libraries, so the agent runs on
// glibc and musl images alike.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary links %v", libs)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "gatehouse-agent 1.2.3" {
		t.Errorf("--version: %q, %v", out, err)
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	for _, args := range [][]string{{"--arch", "sparc"}, {"--version", "latest"}, {"--src", t.TempDir()}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append(args, "--out", t.TempDir()), &stdout, &stderr); code != 1 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
