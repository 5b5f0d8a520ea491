package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database to path while it stays in
// use: VACUUM INTO reads one snapshot, so writes that land meanwhile are
// either wholly in the copy or not at all. The copy is written under a
// temporary name, checked, and only then renamed to path, so a file at path
// is always a whole, sound backup. An existing path is refused, not
// overwritten.
func (d *DB) Backup(ctx context.Context, path string) error {
	if d.Postgres() {
		return errors.New("store: gatehouse backs up SQLite only; back up a PostgreSQL database with pg_dump (docs/deploy.md)")
	}
	if path == "" {
		return errors.New("store: backup path is empty")
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup %s already exists; choose a new file", path)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".partial")
	os.Remove(tmp)
	if _, err := d.q.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := checkCopy(ctx, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store: backup: %w", err)
	}
	return nil
}

// checkCopy runs SQLite's integrity check on a copy, read-only.
func checkCopy(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", sqliteURI(path)+"?mode=ro")
	if err != nil {
		return fmt.Errorf("store: check backup: %w", err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("store: check backup: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("store: the backup failed its integrity check: %s", res)
	}
	return nil
}
