package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestEnvFileAndPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gatehouse.env")
	os.WriteFile(file, []byte("# comment\nA=from-file\nexport B=\"quoted value\"\n\nC='single'\n"), 0o600)
	e, err := NewEnv(mapEnv(map[string]string{"A": "from-env"}), file)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"A": "from-env", "B": "quoted value", "C": "single", "D": ""} {
		if got := e.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	os.WriteFile(file, []byte("NOEQUALS\n"), 0o600)
	if _, err := NewEnv(mapEnv(nil), file); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := NewEnv(mapEnv(nil), filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestSecretFromFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	e, _ := NewEnv(mapEnv(map[string]string{"T_FILE": secret, "U": "inline", "V": "x", "V_FILE": secret}), "")
	if v, err := e.Secret("T"); err != nil || v != "s3cret" {
		t.Errorf("T = %q, %v", v, err)
	}
	if v, err := e.Secret("U"); err != nil || v != "inline" {
		t.Errorf("U = %q, %v", v, err)
	}
	if _, err := e.Secret("V"); err == nil {
		t.Error("both V and V_FILE accepted")
	}
	e2, _ := NewEnv(mapEnv(map[string]string{"W_FILE": "/nonexistent/x"}), "")
	if _, err := e2.Secret("W"); err == nil {
		t.Error("unreadable W_FILE accepted")
	}
}
