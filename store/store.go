// Package store keeps gatehouse's state in SQL: SQLite (pure Go, WAL) by
// default. Stores are dumb: rules live in the provision package, which
// composes the methods of Tx inside one transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is an open gatehouse database.
type DB struct {
	db  *sql.DB
	dsn string
	// Now is the clock for timestamps; tests may replace it.
	Now func() time.Time
}

// Open opens (creating if needed) the database named by dsn and brings its
// schema up to date. A path is a SQLite file; postgres:// URLs are refused
// until PostgreSQL support lands.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("store: PostgreSQL is not supported yet; use a SQLite file path")
	}
	sdb, err := openSQLite(dsn)
	if err != nil {
		return nil, err
	}
	d := &DB{db: sdb, dsn: dsn, Now: time.Now}
	if err := d.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return d, nil
}

func openSQLite(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("store: database path is empty")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create database directory: %w", err)
		}
	}
	// One connection: SQLite allows one writer at a time, and River's SQLite
	// driver needs it to avoid SQLITE_BUSY. WAL keeps readers of the file
	// (backups, sqlite3 shells) from blocking us.
	q := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", sqliteURI(path)+q)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// sqliteURI turns a file path into a SQLite "file:" URI. In a URI '?' starts
// the query, '#' the fragment and '%' an escape, so those must be escaped for
// the path to name the file literally; Clean keeps a leading "//" from being
// read as an authority.
func sqliteURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.Clean(path))
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// SQL returns the underlying pool, for the job queue's driver.
func (d *DB) SQL() *sql.DB { return d.db }

// Ping checks the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// Tx is one database transaction. Its clock is fixed when it begins so every
// row written in it carries the same time.
type Tx struct {
	tx  *sql.Tx
	now time.Time
}

// SQL returns the underlying transaction, so the job queue can enqueue in it.
func (tx *Tx) SQL() *sql.Tx { return tx.tx }

// Now is the transaction's time.
func (tx *Tx) Now() time.Time { return tx.now }

// InTx runs fn in a transaction, committing if fn returns nil.
func (d *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	stx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer stx.Rollback()
	// The clock is cut to the precision rows keep, so tx.Now() and the times
	// set on values written in the transaction equal what is read back.
	if err := fn(&Tx{tx: stx, now: d.Now().UTC().Truncate(time.Microsecond)}); err != nil {
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// micros stores times as Unix microseconds: portable across SQL dialects and
// exact enough for a timeline.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}
