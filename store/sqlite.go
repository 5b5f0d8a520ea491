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

// sqliteEngine is a SQLite file on one connection, and a few more that
// only ever read a device's check-in status (checkinReads).
type sqliteEngine struct {
	db    *sql.DB
	stmts *stmtCache
	reads *sql.DB
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
	reads, err := openCheckinReads(path)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &sqliteEngine{db: db, stmts: newStmtCache(db), reads: reads}, nil
}

// checkinReadConns is how many connections read check-in statuses: one
// per core of the 2-core machines gatehouse is measured on is enough for
// reads that take microseconds.
const checkinReadConns = 2

// openCheckinReads opens the connections that read check-in statuses. On
// the one writing connection every device wait's read queued with the
// nonce commits that must finish before any wait is answered (and behind
// River's work and the operator's changes); in WAL mode a reader needs no
// lock the writer holds, and sees every transaction committed before its
// statement began, so a wait still reads the state an approval committed
// just before it. query_only makes a write sent here by mistake fail
// rather than race the writer. They serve that one statement only (see
// DB.checkinQuerier): the rest of the store reads on the writer, whose
// transactions see their own writes.
func openCheckinReads(path string) (*sql.DB, error) {
	q := "?_pragma=busy_timeout(10000)&_pragma=query_only(1)"
	conn, err := sqlite.NewConnector(sqliteURI(path) + q)
	if err != nil {
		return nil, fmt.Errorf("store: open %s for check-in reads: %w", path, err)
	}
	db := sql.OpenDB(stmtConnector{conn})
	db.SetMaxOpenConns(checkinReadConns)
	db.SetMaxIdleConns(checkinReadConns)
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

func (e *sqliteEngine) pool() querier                  { return sqlQuerier{c: e.db, stmts: e.stmts} }
func (e *sqliteEngine) ping(ctx context.Context) error { return e.db.PingContext(ctx) }
func (e *sqliteEngine) close() error {
	e.stmts.close()
	return errors.Join(e.reads.Close(), e.db.Close())
}
func (e *sqliteEngine) migrations() string { return "migrations/sqlite" }
func (e *sqliteEngine) sqlDB() *sql.DB     { return e.db }

// checkinReads runs queries on the check-in read connections, each of
// which keeps its prepared statements (stmtConn).
func (e *sqliteEngine) checkinReads() querier { return sqlQuerier{c: e.reads} }

// lockSchema needs no lock: BEGIN IMMEDIATE already lets one writer at a
// time through, across processes.
func (e *sqliteEngine) lockSchema(context.Context) (func(), error) { return func() {}, nil }

func (e *sqliteEngine) begin(ctx context.Context) (txHandle, error) { return e.beginTx(ctx, nil) }

// beginRead opens a deferred transaction (the driver drops _txlock for a
// read-only one): BEGIN IMMEDIATE takes the write lock, which a database
// that cannot be written refuses, and reads must go on while it cannot.
// A deferred transaction's snapshot starts at its first read and holds
// for the rest, and the one connection serializes it with the writers.
func (e *sqliteEngine) beginRead(ctx context.Context) (txHandle, error) {
	return e.beginTx(ctx, &sql.TxOptions{ReadOnly: true})
}

func (e *sqliteEngine) beginTx(ctx context.Context, opts *sql.TxOptions) (txHandle, error) {
	tx, err := e.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return sqliteTx{tx, e.stmts}, nil
}

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
