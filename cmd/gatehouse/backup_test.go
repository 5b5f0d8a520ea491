package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/store"
)

func TestBackupCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live := filepath.Join(dir, "gatehouse.db")
	db, err := store.Open(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close() // the server keeps it open while the backup runs
	out := filepath.Join(dir, "copy.db")
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"backup", out, "--db", live}, &stdout, &stderr, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "backed up") {
		t.Errorf("stdout = %q", stdout.String())
	}
	copyDB, err := store.Open(ctx, out)
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	copyDB.Close()
	for name, args := range map[string][]string{
		"exists":      {"backup", out, "--db", live},
		"no database": {"backup", filepath.Join(dir, "x.db"), "--db", filepath.Join(dir, "none.db")},
	} {
		stderr.Reset()
		if code := run(ctx, args, &stdout, &stderr, func(string) string { return "" }); code != 1 || stderr.Len() == 0 {
			t.Errorf("%s: exit %d, stderr %q; want 1 and a reason", name, code, stderr.String())
		}
	}
	if code := run(ctx, []string{"backup"}, &stdout, &stderr, func(string) string { return "" }); code != 2 {
		t.Errorf("no FILE: exit %d, want 2", code)
	}
	if code := run(ctx, []string{"backup", "--help"}, &stdout, &stderr, func(string) string { return "" }); code != 0 {
		t.Errorf("--help: exit %d, want 0", code)
	}
}
