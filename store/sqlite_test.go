package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/store"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	runConformance(t, func(t *testing.T) *store.DB {
		t.Helper()
		return openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	})
}

// openSQLite opens the file at path and closes it when the test ends.
func openSQLite(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func mustClose(t *testing.T, db *store.DB) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func queryString(t *testing.T, db *store.DB, q string, args ...any) string {
	t.Helper()
	var s string
	if err := db.SQL().QueryRowContext(t.Context(), q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	for _, tt := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
	} {
		if got := queryString(t, db, "PRAGMA "+tt.pragma); got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
	// River's SQLite driver needs a single connection.
	if got := db.SQL().Stats().MaxOpenConnections; got != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", got)
	}
}

func TestSQLiteRiverTables(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	for _, table := range []string{"river_job", "river_queue", "river_leader", "river_migration"} {
		got := queryString(t, db, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table)
		if got != "1" {
			t.Errorf("table %s: found %s, want 1", table, got)
		}
	}
}

func TestSQLiteReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, db, newDevice("dev-01"))
	version, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const migrations = `SELECT group_concat(version || ':' || applied_at, ',') FROM schema_migrations`
	const riverMigrations = `SELECT COUNT(*) FROM river_migration`
	wantApplied, wantRiver := queryString(t, db, migrations), queryString(t, db, riverMigrations)
	mustClose(t, db)

	db = openSQLite(t, path)
	if got, err := db.SchemaVersion(t.Context()); err != nil || got != version {
		t.Errorf("SchemaVersion after reopen = %d, %v; want %d", got, err, version)
	}
	// Nothing was applied again: same rows, same applied_at.
	if got := queryString(t, db, migrations); got != wantApplied {
		t.Errorf("schema_migrations after reopen = %s, want %s", got, wantApplied)
	}
	if got := queryString(t, db, riverMigrations); got != wantRiver {
		t.Errorf("river_migration rows after reopen = %s, want %s", got, wantRiver)
	}
	if got := mustDevice(t, db, "dev-01"); got.Fingerprint != "fp-dev-01" {
		t.Errorf("device after reopen: fingerprint %q, want fp-dev-01", got.Fingerprint)
	}
}

func TestSQLiteRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	mustClose(t, db)

	db, err = store.Open(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatal("Open of a database from a newer gatehouse succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %q, want it to mention %q", err, "newer")
	}
}

func TestOpenRefusesPostgres(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://gatehouse:secret@db.example:5432/gatehouse?sslmode=require",
		"postgresql://localhost/gatehouse",
	} {
		db, err := store.Open(t.Context(), dsn)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
			continue
		}
		if !strings.Contains(err.Error(), "PostgreSQL") {
			t.Errorf("Open(%q) error = %q, want it to say PostgreSQL is not supported", dsn, err)
		}
	}
	// It must not have been taken for a file path.
	for _, name := range []string{"postgres:", "postgresql:"} {
		if _, err := os.Stat(name); err == nil {
			t.Errorf("Open created %q in the working directory", name)
		}
	}
}

func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(dir, "not.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not an SQLite database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path string }{
		{"Empty", ""},
		{"ParentIsAFile", filepath.Join(file, "gatehouse.db")},
		{"DeepUnderAFile", filepath.Join(file, "a", "b", "gatehouse.db")},
		{"IsADirectory", dir},
		{"NotADatabase", notDB},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(t.Context(), tt.path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tt.path)
			}
		})
	}
}

func TestOpenReadOnlyDirectory(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root can write to read-only directories")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	db, err := store.Open(t.Context(), filepath.Join(dir, "gatehouse.db"))
	if err == nil {
		db.Close()
		t.Fatal("Open in a read-only directory succeeded, want an error")
	}
}

func TestSQLiteCreatesDirectories(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "var", "lib", "gatehouse", "gatehouse.db")
	openSQLite(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestSQLiteRelativePath(t *testing.T) {
	t.Chdir(t.TempDir()) // not parallel: changes the working directory
	for _, path := range []string{"gatehouse.db", filepath.Join("data", "gatehouse.db")} {
		openSQLite(t, path)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("database file %s: %v", path, err)
		}
	}
}

// SQLite is opened through a file: URI; characters that mean something in a
// URI must still name the file literally.
func TestSQLitePathWithURICharacters(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a#b", "100%", "a%20b", "what?", "two words", "mode=ro&x"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), name, "gate#house?.db")
			db, err := store.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open(%q): %v", path, err)
			}
			mustCreate(t, db, newDevice("dev-01"))
			mustClose(t, db)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("database file not at the path given: %v", err)
			}
			db = openSQLite(t, path)
			mustDevice(t, db, "dev-01")
		})
	}
}

// SQLite names the columns of a violated constraint; the error keeps them so
// callers can tell a taken name from a taken key.
func TestSQLiteUniqueNamesColumn(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.UpdateDevice(t.Context(), "dev-01", store.DeviceUpdate{Name: ptr("gw")}); err != nil {
			return err
		}
		return tx.CreateSteps(t.Context(), "dev-01", []gatehouse.StepName{gatehouse.StepMender})
	})
	dup := newDevice("dev-03")
	dup.Fingerprint = "fp-dev-01"
	for _, tt := range []struct {
		name, want string
		fn         func(ctx context.Context, tx *store.Tx) error
	}{
		{"Name", "devices.name", func(ctx context.Context, tx *store.Tx) error {
			return tx.UpdateDevice(ctx, "dev-02", store.DeviceUpdate{Name: ptr("gw")})
		}},
		{"Fingerprint", "device_keys.fingerprint", func(ctx context.Context, tx *store.Tx) error {
			return tx.CreateDevice(ctx, dup, newKey(dup))
		}},
		{"CompositeKey", "provisioning_steps.device_id, provisioning_steps.step", func(ctx context.Context, tx *store.Tx) error {
			return tx.CreateSteps(ctx, "dev-01", []gatehouse.StepName{gatehouse.StepMender})
		}},
	} {
		err := txErr(t, db, tt.fn)
		if !errors.Is(err, store.ErrUnique) || !strings.HasSuffix(err.Error(), ": "+tt.want) {
			t.Errorf("%s: err = %v, want ErrUnique ending in %q", tt.name, err, tt.want)
		}
		if code := gatehouse.ErrorCode(err); code != gatehouse.EINTERNAL {
			t.Errorf("%s: ErrorCode = %q, want %q: the caller decides what a conflict means", tt.name, code, gatehouse.EINTERNAL)
		}
	}
}
