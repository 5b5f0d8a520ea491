package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gh runs the gatehouse command with env as its environment and in as its
// standard input.
func gh(t *testing.T, env map[string]string, in string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	stdin = strings.NewReader(in)
	t.Cleanup(func() { stdin = nil })
	code := run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

// TestBootstrapThenAdministerOverAPI is the first day of a deployment: the
// first admin is made on the database, then everything else goes through
// the server as that admin.
func TestBootstrapThenAdministerOverAPI(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "gatehouse.db")
	code, secret, errOut := gh(t, nil, "", "tokens", "create", "--db", dbPath, "--name", "first-admin")
	if code != 0 || !strings.HasPrefix(secret, "gat_") || !strings.Contains(errOut, "expires") {
		t.Fatalf("bootstrap token: %d %q %q", code, secret, errOut)
	}
	code, _, errOut = gh(t, nil, "a password long enough\n", "users", "create", "--db", dbPath, "--name", "alice", "--password-stdin")
	if code != 0 || !strings.Contains(errOut, `admin user "alice"`) {
		t.Fatalf("bootstrap user: %d %q", code, errOut)
	}
	a, err := startApp(context.Background(), appConfig{Listen: "127.0.0.1:0", DB: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	env := map[string]string{"GATEHOUSE_SERVER": a.server.URL(), "GATEHOUSE_TOKEN": strings.TrimSpace(secret)}

	code, ciSecret, errOut := gh(t, env, "", "tokens", "create", "--name", "ci", "--role", "viewer", "--expires", "never")
	if code != 0 || !strings.Contains(errOut, "never expires") {
		t.Fatalf("create over the API: %d %q", code, errOut)
	}
	code, list, _ := gh(t, env, "", "tokens", "list")
	if code != 0 || !strings.Contains(list, "ci") || !strings.Contains(list, "token:first-admin") || strings.Contains(list, strings.TrimSpace(ciSecret)) {
		t.Fatalf("list: %d\n%s", code, list)
	}
	ciEnv := map[string]string{"GATEHOUSE_SERVER": a.server.URL(), "GATEHOUSE_TOKEN": strings.TrimSpace(ciSecret)}
	if code, _, errOut := gh(t, ciEnv, "", "tokens", "list"); code != 1 || !strings.Contains(errOut, "needs admin") {
		t.Fatalf("a viewer lists tokens: %d %q", code, errOut)
	}
	if code, _, errOut := gh(t, env, "", "tokens", "revoke", "ci"); code != 0 || !strings.Contains(errOut, "Revoked") {
		t.Fatalf("revoke: %d %q", code, errOut)
	}
	if code, _, errOut := gh(t, ciEnv, "", "devices", "list"); code != 1 || !strings.Contains(errOut, "revoked") {
		t.Fatalf("the revoked token: %d %q", code, errOut)
	}

	code, pw, _ := gh(t, env, "", "users", "create", "--name", "bob", "--role", "operator")
	if code != 0 || len(strings.TrimSpace(pw)) < 20 {
		t.Fatalf("user with a generated password: %d %q", code, pw)
	}
	if _, _, err := a.svc.LoginPassword(context.Background(), "bob", strings.TrimSpace(pw)); err != nil {
		t.Fatalf("bob logs in with the printed password: %v", err)
	}
	if code, _, errOut := gh(t, env, "", "users", "set", "bob", "--disable"); code != 0 || !strings.Contains(errOut, "disabled") {
		t.Fatalf("disable: %d %q", code, errOut)
	}
	code, users, _ := gh(t, env, "", "users", "list")
	if code != 0 || !strings.Contains(users, "alice") || !strings.Contains(users, "disabled") {
		t.Fatalf("users list: %d\n%s", code, users)
	}
	if code, _, errOut := gh(t, env, "", "users", "delete", "bob"); code != 0 {
		t.Fatalf("delete: %d %q", code, errOut)
	}
}

func TestAdminCommandLineMistakes(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "gatehouse.db")
	for _, tc := range []struct {
		in   string
		args []string
		want string
	}{
		{"", []string{"tokens", "create", "--db", dbPath}, "--name is required"},
		{"", []string{"tokens", "create", "--db", dbPath, "--name", "x", "--role", "root"}, "want admin, operator or viewer"},
		{"", []string{"tokens", "create", "--db", dbPath, "--name", "x", "--expires", "soon"}, "--expires"},
		{"", []string{"tokens", "revoke", "--db", dbPath}, "want exactly one token name or ID"},
		{"", []string{"users", "create", "--db", dbPath, "--name", "x", "--password-stdin"}, "held no password"},
		{"", []string{"users", "set", "--db", dbPath, "x"}, "nothing to change"},
		{"", []string{"users", "set", "--db", dbPath, "x", "--disable", "--enable"}, "not both"},
	} {
		code, _, errOut := gh(t, nil, tc.in, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	code, _, errOut := gh(t, nil, "short\n", "users", "create", "--db", dbPath, "--name", "x", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "12 to 256") {
		t.Errorf("short password: %d %q", code, errOut)
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90d":                  now.Add(90 * 24 * time.Hour),
		"12h":                  now.Add(12 * time.Hour),
		"2027-06-30":           time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC),
		"2027-06-30T12:00:00Z": time.Date(2027, 6, 30, 12, 0, 0, 0, time.UTC),
	} {
		got, never, err := parseExpiry(in, now)
		if err != nil || never || !got.Equal(want) {
			t.Errorf("%q: %v %v %v, want %v", in, got, never, err, want)
		}
	}
	if got, never, err := parseExpiry("never", now); err != nil || !never || got != nil {
		t.Errorf("never: %v %v %v", got, never, err)
	}
	for _, bad := range []string{"", "0d", "-1d", "9999d", "tomorrow", "-5h"} {
		if _, _, err := parseExpiry(bad, now); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
