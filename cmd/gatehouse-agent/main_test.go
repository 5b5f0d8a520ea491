package main

import (
	"bytes"
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
	missingKey := filepath.Join(t.TempDir(), "mender-agent.pem")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"help", []string{"--help"}, 0, "Exit codes:", ""},
		{"version", []string{"--version"}, 0, "gatehouse-agent dev", ""},
		{"missing server", nil, 2, "", "missing --server"},
		{"unknown flag", []string{"--bogus"}, 2, "", "flag provided but not defined"},
		{"stray argument", []string{"--server", "https://x", "extra"}, 2, "", "unexpected arguments: extra"},
		{"bad server", []string{"--server", "gatehouse.local"}, 2, "", "invalid --server"},
		{"missing key", []string{"--server", "https://127.0.0.1:1", "--key", missingKey}, 3, "", missingKey + " not found"},
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

func TestServerFromEnv(t *testing.T) {
	t.Setenv("GATEHOUSE_SERVER", "https://127.0.0.1:1")
	missingKey := filepath.Join(t.TempDir(), "k.pem")
	// Getting as far as the key shows the env var satisfied --server.
	if code, _, stderr := runArgs(t, "--key", missingKey); code != 3 {
		t.Fatalf("exit %d, want 3; stderr: %s", code, stderr)
	}
}

func TestErrorIsOneLine(t *testing.T) {
	t.Setenv("GATEHOUSE_SERVER", "")
	_, _, stderr := runArgs(t, "--server", "https://127.0.0.1:1", "--key", t.TempDir())
	last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]
	if !strings.HasPrefix(last, "gatehouse-agent: ") {
		t.Fatalf("last line %q, want the error", last)
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
