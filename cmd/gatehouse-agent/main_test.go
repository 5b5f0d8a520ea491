package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestRunFlags(t *testing.T) {
	t.Setenv("GATEHOUSE_SERVER", "")
	root := t.TempDir()
	missingKey := "/var/lib/mender/mender-agent.pem"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"help", []string{"--help"}, 0, "Exit codes:", ""},
		{"version", []string{"--version"}, 0, "gatehouse-agent dev", ""},
		{"missing server", []string{"--root", root}, 2, "", "missing --server"},
		{"unknown flag", []string{"--bogus"}, 2, "", "flag provided but not defined"},
		{"stray argument", []string{"--server", "https://x", "extra"}, 2, "", "unexpected arguments: extra"},
		{"bad server", []string{"--root", root, "--server", "gatehouse.local"}, 2, "", "invalid --server"},
		{"missing key", []string{"--root", root, "--server", "https://127.0.0.1:1", "--wait-for-key=false"}, 3, "", missingKey + " not found"},
		{"plain http", []string{"--root", root, "--server", "http://127.0.0.1:1"}, 2, "", "refusing plain http server"},
		{"plain http allowed", []string{"--root", root, "--server", "http://127.0.0.1:1", "--insecure-http", "--wait-for-key=false"}, 3, "", missingKey + " not found"},
		{"missing CA file", []string{"--root", root, "--server", "https://127.0.0.1:1", "--ca", "/nope.pem"}, 2, "", "--ca"},
		{"missing config file", []string{"--root", root, "--config", "/nope.conf"}, 2, "", "nope.conf"},
		{"two MAC sources", []string{"--root", root, "--server", "https://x", "--mac", "02:00:00:00:00:01", "--identity-script", "/x"}, 2, "", "only one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout, tt.stdout)
			}
			if tt.stderr == "" && stderr != "" {
				t.Errorf("unexpected stderr %q", stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
		})
	}
}

func TestHelpDocumentsEveryExitCode(t *testing.T) {
	_, stdout, _ := runArgs(t, "--help")
	for _, s := range []string{"  0  provisioned", "  2  bad flags", "  3  device key", "  5  gateway dismissed", "  7  credentials written"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("--help lacks %q", s)
		}
	}
}

func TestServerFromEnv(t *testing.T) {
	t.Setenv("GATEHOUSE_SERVER", "https://127.0.0.1:1")
	// Getting as far as the key shows the env var satisfied --server.
	if code, _, stderr := runArgs(t, "--root", t.TempDir(), "--wait-for-key=false"); code != 3 {
		t.Fatalf("exit %d, want 3; stderr: %s", code, stderr)
	}
}

func TestErrorIsOneLine(t *testing.T) {
	t.Setenv("GATEHOUSE_SERVER", "")
	_, _, stderr := runArgs(t, "--server", "https://127.0.0.1:1", "--key", t.TempDir(), "--out", t.TempDir())
	last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
	if !strings.HasPrefix(last, "gatehouse-agent: ") {
		t.Fatalf("last line %q, want the error", last)
	}
}

func writeConf(t *testing.T, root, text string) {
	t.Helper()
	p := filepath.Join(root, "etc/gatehouse/agent.conf")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFile(t *testing.T) {
	t.Setenv("GATEHOUSE_SERVER", "")
	root := t.TempDir()
	writeConf(t, root, "SERVER=https://127.0.0.1:1\nKEY=/from-file.pem\nWAIT_FOR_KEY=no\n")
	// The file's server and key are used ...
	code, _, stderr := runArgs(t, "--root", root)
	if code != 3 || !strings.Contains(stderr, "/from-file.pem not found") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	// ... but flags win.
	code, _, stderr = runArgs(t, "--root", root, "--key", "/from-flag.pem", "--server", "ftp://flag")
	if code != 2 || !strings.Contains(stderr, "ftp://flag") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	writeConf(t, root, "SERVER=https://127.0.0.1:1\nSERVR=typo\n")
	if code, _, stderr := runArgs(t, "--root", root); code != 2 || !strings.Contains(stderr, "unknown setting SERVR") {
		t.Fatalf("typo: exit %d, stderr %s", code, stderr)
	}
}

func TestAlreadyProvisionedExitsAtOnce(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "var/lib/gatehouse/device-name")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("gw-42\n"), 0o644)
	code, _, stderr := runArgs(t, "--root", root, "--server", "https://127.0.0.1:1", "--wait-for-key=false")
	if code != 0 || !strings.Contains(stderr, "already provisioned as gw-42") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
}

func TestRestartFlag(t *testing.T) {
	var l stringList
	if l.set || l.String() != "" {
		t.Fatal("zero stringList not empty")
	}
	l.Set("")
	if !l.set || len(l.vals) != 0 {
		t.Errorf("--restart-cmd '' should select an explicit empty list: %+v", l)
	}
	l.Set("a")
	l.Set("b c")
	if l.String() != "a, b c" {
		t.Errorf("String() = %q", l.String())
	}
}
