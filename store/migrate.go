package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Each dialect has its own numbered files. PostgreSQL's start at 0015, the
// schema SQLite had reached when PostgreSQL support came, so a number means
// the same schema in both from then on.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads numbered files "NNNN_name.sql" in order.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: migration %s: name must start with a number and '_'", e.Name())
		}
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies our migrations one transaction each, then River's. It
// refuses a database written by a newer gatehouse rather than guess. Two
// processes migrating at once take turns.
func (d *DB) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles, d.eng.migrations())
	if err != nil {
		return err
	}
	unlock, err := d.eng.lockSchema(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := d.q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	current, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if latest := ms[len(ms)-1].version; current > latest {
		return fmt.Errorf("store: database schema version %d is newer than this gatehouse knows (%d); run a newer gatehouse", current, latest)
	}
	applied, err := d.appliedVersions(ctx)
	if err != nil {
		return err
	}
	// Every migration not yet recorded runs, not only those above the
	// highest: numbers are taken on parallel branches, so a database may
	// have met 0006 before the branch holding 0005 was merged.
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if err := d.apply(ctx, m); err != nil {
			return err
		}
	}
	return d.eng.migrateQueue(ctx)
}

// SchemaVersion is the highest migration applied to the database.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := d.q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v, nil
}

// SchemaVersionIfAny is SchemaVersion, or 0 for a database never migrated.
func (d *DB) SchemaVersionIfAny(ctx context.Context) (int, error) {
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if d.Postgres() {
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`
	}
	var n int
	if err := d.q.QueryRowContext(ctx, q).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	return d.SchemaVersion(ctx)
}

func (d *DB) appliedVersions(ctx context.Context) (map[int]bool, error) {
	rows, err := d.q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("store: read applied migrations: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("store: read applied migrations: %w", err)
		}
		out[v] = true
	}
	return out, rows.Err()
}

func (d *DB) apply(ctx context.Context, m migration) error {
	return d.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.name, err)
		}
		_, err := tx.q.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, micros(tx.now))
		return err
	})
}

// LatestSchemaVersion is the highest migration this gatehouse knows for the
// database's dialect: the schema it needs.
func (d *DB) LatestSchemaVersion() (int, error) {
	ms, err := loadMigrations(migrationFiles, d.eng.migrations())
	if err != nil {
		return 0, err
	}
	return ms[len(ms)-1].version, nil
}
