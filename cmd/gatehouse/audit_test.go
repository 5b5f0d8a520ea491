package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/provision"
)

// auditApp is a running server with an admin token and n audit entries.
type auditApp struct {
	*app
	dbPath string
	env    map[string]string
}

// startAuditApp starts a server whose audit log holds n entries.
func startAuditApp(t *testing.T, n int) *auditApp {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "gatehouse.db")
	a, err := startApp(ctx, appConfig{Listen: "127.0.0.1:0", DB: dbPath, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	token, _, err := a.svc.CreateToken(ctx, provision.TokenSpec{Name: "admin", Role: gatehouse.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	// Making the token is the first entry; n in all.
	octx := gatehouse.WithOrigin(ctx, gatehouse.Origin{Actor: "local:test", Source: "192.0.2.1"})
	for i := range n - 1 {
		if err := a.svc.Audit(octx, "user.create", fmt.Sprint("user-", i+1), nil, map[string]any{"role": "viewer"}); err != nil {
			t.Fatal(err)
		}
	}
	return &auditApp{app: a, dbPath: dbPath, env: map[string]string{"GATEHOUSE_SERVER": a.server.URL(), "GATEHOUSE_TOKEN": token}}
}

// runAuditCLI runs "gatehouse audit ARGS" with env as the environment.
func runAuditCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"audit"}, args...), &out, &errOut, func(k string) string { return env[k] })
	if tok := env["GATEHOUSE_TOKEN"]; tok != "" && strings.Contains(out.String()+errOut.String(), tok) {
		t.Errorf("output shows the API token")
	}
	return code, out.String(), errOut.String()
}

var intact = regexp.MustCompile(`^audit log intact: (\d+) entries, head (\d+:[0-9a-f]{64})\n$`)

// wantIntact runs verify with args, wants it to find n intact entries, and
// returns the head it printed.
func wantIntact(t *testing.T, env map[string]string, n int, args ...string) audit.Head {
	t.Helper()
	code, stdout, stderr := runAuditCLI(t, env, append([]string{"verify"}, args...)...)
	m := intact.FindStringSubmatch(stdout)
	if code != 0 || m == nil || m[1] != fmt.Sprint(n) {
		t.Fatalf("verify: exit %d, stdout %q, stderr %q; want intact with %d entries", code, stdout, stderr, n)
	}
	h, err := audit.ParseHead(m[2])
	if err != nil || h.Seq != int64(n) {
		t.Fatalf("printed head %q: %v", m[2], err)
	}
	return h
}

func wantBroken(t *testing.T, code int, stderr string, seq int64, what string) {
	t.Helper()
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("audit log broken at entry %d: ", seq)) || !strings.Contains(stderr, what) {
		t.Fatalf("verify: exit %d, stderr %q; want exit 1 naming entry %d and %q", code, stderr, seq, what)
	}
}

// TestAuditExportVerifyRoundTrip exports over the REST API, verifies the
// export, the database and the API, then tampers with each and verifies
// again.
func TestAuditExportVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	a := startAuditApp(t, 25)
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	code, stdout, stderr := runAuditCLI(t, a.env, "export", "--out", out)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "exported 25 entries, the last 25:") {
		t.Fatalf("export: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 25 || !strings.HasPrefix(lines[0], `{"seq":1,`) || !strings.Contains(lines[24], `"target":"user-24"`) {
		t.Fatalf("export holds %d lines, first %s", len(lines), lines[0])
	}

	head := wantIntact(t, a.env, 25, "--file", out)
	if h := wantIntact(t, a.env, 25); h != head {
		t.Errorf("over the API: head %s, from the file %s", h, head)
	}
	if h := wantIntact(t, nil, 25, "--db", a.dbPath, "--expect-head", head.String()); h != head {
		t.Errorf("from the database: head %s, from the file %s", h, head)
	}

	// An edited export.
	edited := filepath.Join(t.TempDir(), "edited.jsonl")
	lines10 := append([]string(nil), lines...)
	lines10[9] = strings.Replace(lines10[9], `"target":"user-9"`, `"target":"user-evil"`, 1)
	writeLines(t, edited, lines10)
	code, _, stderr = runAuditCLI(t, nil, "verify", "--file", edited)
	wantBroken(t, code, stderr, 10, "edited")

	// A truncated export: fine alone, caught with the head remembered.
	short := filepath.Join(t.TempDir(), "short.jsonl")
	writeLines(t, short, lines[:20])
	wantIntact(t, nil, 20, "--file", short)
	code, _, stderr = runAuditCLI(t, nil, "verify", "--file", short, "--expect-head", head.String())
	wantBroken(t, code, stderr, 21, "removed from the end")

	// The database edited behind the server's back.
	for _, q := range []string{`DROP TRIGGER audit_log_no_delete`, `DELETE FROM audit_log WHERE seq = 7`} {
		if _, err := a.db.SQL().ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr = runAuditCLI(t, nil, "verify", "--db", a.dbPath)
	wantBroken(t, code, stderr, 7, "deleted")
	code, _, stderr = runAuditCLI(t, a.env, "verify")
	wantBroken(t, code, stderr, 7, "deleted")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditExportToStdout(t *testing.T) {
	t.Parallel()
	a := startAuditApp(t, 3)
	code, stdout, stderr := runAuditCLI(t, a.env, "export")
	if code != 0 || strings.Count(stdout, "\n") != 3 || !strings.Contains(stderr, "exported 3 entries") {
		t.Fatalf("export: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestAuditExportNeedsAdmin: a refused export leaves no file.
func TestAuditExportNeedsAdmin(t *testing.T) {
	t.Parallel()
	a := startAuditApp(t, 1)
	viewer, _, err := a.svc.CreateToken(context.Background(), provision.TokenSpec{Name: "viewer", Role: gatehouse.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "audit.jsonl")
	env := map[string]string{"GATEHOUSE_SERVER": a.env["GATEHOUSE_SERVER"], "GATEHOUSE_TOKEN": viewer}
	code, _, stderr := runAuditCLI(t, env, "export", "--out", out)
	if code != 1 || !strings.Contains(stderr, "needs admin") {
		t.Errorf("export as viewer: exit %d, stderr %q", code, stderr)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Errorf("a refused export left %d files", len(entries))
	}
}

func TestAuditUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: gatehouse audit"},
		{[]string{"nope"}, 2, `unknown audit command "nope"`},
		{[]string{"verify", "--db", "a.db", "--file", "b.jsonl"}, 2, "not both"},
		{[]string{"verify", "--file", "x", "--expect-head", "12"}, 2, "SEQ:HASH"},
		{[]string{"verify", "--db", missing}, 1, "no such file"},
		{[]string{"verify", "extra"}, 2, "unexpected argument"},
		{[]string{"export"}, 2, "no API token"},
	}
	for _, tc := range cases {
		code, _, stderr := runAuditCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("verify --db made a database where there was none")
	}
	code, stdout, _ := runAuditCLI(t, nil, "--help")
	if code != 0 || !strings.Contains(stdout, "--expect-head") {
		t.Errorf("help: %d %q", code, stdout)
	}
}

func TestAuditFileErrors(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	writeLines(t, path, []string{"", `{"seq":1,`})
	code, _, stderr := runAuditCLI(t, nil, "verify", "--file", path)
	if code != 1 || !strings.Contains(stderr, "line 2") {
		t.Errorf("a broken line: exit %d, stderr %q", code, stderr)
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	seq := func(yield func(audit.Entry, error) bool) {
		for i := range 5 {
			if !yield(audit.Entry{Seq: int64(i + 1)}, nil) {
				return
			}
		}
	}
	n := 0
	for range progress(seq, &buf, "checked", 2) {
		n++
	}
	if n != 5 || buf.String() != "checked 2 entries...\nchecked 4 entries...\n" {
		t.Errorf("%d entries, progress %q", n, buf.String())
	}
}
