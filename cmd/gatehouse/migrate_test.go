package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gatehouse/internal/pgtest"
	"gatehouse/store"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

// TestMigrate: a new database is migrated to the latest version, a second
// run finds nothing to do, and serve --migrate=false accepts it only then.
func TestMigrate(t *testing.T) {
	t.Parallel()
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "g.db") },
		"postgres": func(t *testing.T) string { return pgtest.URL(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dsn := dsn(t)
			if _, err := openDB(context.Background(), dsn, false); err == nil || !strings.Contains(err.Error(), "run 'gatehouse migrate' first") {
				t.Fatalf("unmigrated database with --migrate=false: %v, want a pointer to gatehouse migrate", err)
			}
			code, out, errs := runCmd(t, "migrate", "--db", dsn)
			if code != 0 || !strings.Contains(out, "schema migrated from version 0 to ") {
				t.Fatalf("migrate = %d, %q, %q", code, out, errs)
			}
			code, out, _ = runCmd(t, "migrate", "--db", dsn)
			if code != 0 || !strings.Contains(out, "schema already at version") {
				t.Fatalf("second migrate = %d, %q", code, out)
			}
			db, err := openDB(context.Background(), dsn, false)
			if err != nil {
				t.Fatalf("migrated database with --migrate=false: %v", err)
			}
			have, _ := db.SchemaVersion(context.Background())
			want, _ := db.LatestSchemaVersion()
			db.Close()
			if have != want || !strings.Contains(out, "version "+strconv.Itoa(want)) {
				t.Errorf("schema version %d, latest %d, output %q", have, want, out)
			}
		})
	}
}

func TestDescribeHidesThePassword(t *testing.T) {
	got := store.Describe("postgres://gatehouse:s3cret@db.internal:5432/gh?sslmode=require")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "db.internal") {
		t.Errorf("Describe = %q", got)
	}
	if code, _, errs := runCmd(t, "backup", "x.db", "--db", "postgres://u:s3cret@h/db"); code != 2 || !strings.Contains(errs, "pg_dump") || strings.Contains(errs, "s3cret") {
		t.Errorf("backup of PostgreSQL = %d, %q", code, errs)
	}
}
