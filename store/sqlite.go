package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"modernc.org/sqlite" // also registers the "sqlite" driver
)

// sqliteEngine is a SQLite file on one connection.
type sqliteEngine struct {
	db    *sql.DB
	stmts *stmtCache
}

func openSQLite(path string) (*sqliteEngine, error) {
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
	conn, err := sqlite.NewConnector(sqliteURI(path) + q)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// The connection keeps its prepared statements (stmtconn.go).
	db := sql.OpenDB(stmtConnector{conn})
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	return &sqliteEngine{db: db, stmts: newStmtCache(db)}, nil
}

// sqliteURI turns a file path into a SQLite "file:" URI. In a URI '?' starts
// the query, '#' the fragment and '%' an escape, so those must be escaped for
// the path to name the file literally; Clean keeps a leading "//" from being
// read as an authority.
func sqliteURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.Clean(path))
}

func (e *sqliteEngine) pool() querier                  { return sqlQuerier{c: e.db, stmts: e.stmts} }
func (e *sqliteEngine) ping(ctx context.Context) error { return e.db.PingContext(ctx) }
func (e *sqliteEngine) close() error                   { e.stmts.close(); return e.db.Close() }
func (e *sqliteEngine) migrations() string             { return "migrations/sqlite" }
func (e *sqliteEngine) sqlDB() *sql.DB                 { return e.db }

// lockSchema needs no lock: BEGIN IMMEDIATE already lets one writer at a
// time through, across processes.
func (e *sqliteEngine) lockSchema(context.Context) (func(), error) { return func() {}, nil }

func (e *sqliteEngine) begin(ctx context.Context) (txHandle, error) {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqliteTx{tx, e.stmts}, nil
}

// beginRead is begin: the one connection serializes readers anyway.
func (e *sqliteEngine) beginRead(ctx context.Context) (txHandle, error) { return e.begin(ctx) }

func (e *sqliteEngine) migrateQueue(ctx context.Context) error {
	m, err := rivermigrate.New(riversqlite.New(e.db), nil)
	if err != nil {
		return fmt.Errorf("store: job queue migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("store: job queue migrations: %w", err)
	}
	return nil
}

func (e *sqliteEngine) newQueue(cfg *river.Config) (queue, error) {
	d := newSQLiteDriver(e.db)
	c, err := river.NewClient(d, cfg)
	if err != nil {
		return nil, err
	}
	return riverQueue[*sql.Tx]{Client: c, wake: d.jobsCommitted}, nil
}

type sqliteTx struct {
	tx    *sql.Tx
	stmts *stmtCache
}

func (t sqliteTx) querier() querier { return sqlQuerier{c: t.tx, tx: t.tx, stmts: t.stmts} }
func (t sqliteTx) raw() any         { return t.tx }
func (t sqliteTx) commit(ctx context.Context) error {
	err := t.tx.Commit()
	t.stmts.prepareWanted(ctx)
	return err
}

func (t sqliteTx) rollback(ctx context.Context) error {
	err := t.tx.Rollback()
	if !errors.Is(err, sql.ErrTxDone) {
		t.stmts.prepareWanted(ctx)
	}
	return err
}
