// Package store keeps gatehouse's state in SQL: SQLite (pure Go, WAL) by
// default, or PostgreSQL (pgx) for several replicas on one database. Stores
// are dumb: rules live in the provision package, which composes the methods
// of Tx inside one transaction.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// DB is an open gatehouse database.
type DB struct {
	eng engine
	q   querier
	dsn string
	// jobs is the job queue once NewJobs made it; transactions enqueue in it.
	jobs queue
	// Now is the clock for timestamps; tests may replace it.
	Now func() time.Time
	// nonces gathers concurrent UseNonce calls into one commit.
	nonces nonceBatcher
	// nlog records them instead of the table once ClaimNonces made this
	// process the database's one server (SQLite only).
	nlog *nonceLog
	// statuses keeps check-in statuses between changes (SQLite only).
	statuses statusCache

	// writes remembers a write refused because the database cannot be
	// written (unwritable.go).
	writes writeHealth

	listenMu      sync.Mutex
	lastListenErr error
}

// engine is what differs between SQLite and PostgreSQL: connecting,
// transactions, migrations and the job queue's driver. Everything else,
// every query included, is shared.
type engine interface {
	pool() querier
	begin(ctx context.Context) (txHandle, error)
	// beginRead opens a read-only transaction on one snapshot, which need
	// not wait for the writers' lock.
	beginRead(ctx context.Context) (txHandle, error)
	ping(ctx context.Context) error
	close() error
	// migrations names the embedded directory of the dialect's schema.
	migrations() string
	// lockSchema keeps two processes from migrating at once.
	lockSchema(ctx context.Context) (unlock func(), err error)
	migrateQueue(ctx context.Context) error
	newQueue(cfg *river.Config) (queue, error)
	// sqlDB is the database/sql pool, nil where there is none.
	sqlDB() *sql.DB
}

// txHandle is one open transaction of an engine.
type txHandle interface {
	querier() querier
	// raw is the driver's transaction (*sql.Tx or pgx.Tx), for the job queue.
	raw() any
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// IsPostgres reports whether dsn names a PostgreSQL database rather than a
// SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Describe names the database for logs and messages: a PostgreSQL URL
// without its password, or the SQLite path.
func Describe(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "a PostgreSQL database (malformed URL)"
	}
	return u.Redacted()
}

// Open opens (creating if needed) the database named by dsn and brings its
// schema up to date. A postgres:// or postgresql:// URL is a PostgreSQL
// database; anything else is the path of a SQLite file.
func Open(ctx context.Context, dsn string) (*DB, error) {
	d, err := Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Connect opens the database named by dsn without touching its schema, for
// a process that leaves migrations to "gatehouse migrate" (a rolling deploy).
func Connect(ctx context.Context, dsn string) (*DB, error) {
	var eng engine
	var err error
	if IsPostgres(dsn) {
		eng, err = openPostgres(ctx, dsn)
	} else {
		eng, err = openSQLite(dsn)
	}
	if err != nil {
		return nil, err
	}
	d := &DB{eng: eng, q: eng.pool(), dsn: dsn, Now: time.Now}
	if d.Postgres() {
		d.nonces.timeout = nonceFlushTimeout
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error {
	err := d.eng.close()
	if d.nlog != nil {
		err = errors.Join(err, d.nlog.close())
	}
	return err
}

// SQL returns the SQLite database/sql pool, for tests and tools that speak
// SQL directly; nil on PostgreSQL. What they write does not pass through
// InTx, so from the first call on check-in statuses are no longer cached.
func (d *DB) SQL() *sql.DB {
	d.statuses.disable()
	return d.eng.sqlDB()
}

// Postgres reports whether the database is PostgreSQL.
func (d *DB) Postgres() bool { return IsPostgres(d.dsn) }

// Ping checks the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.eng.ping(ctx) }

// Tx is one database transaction. Its clock is fixed when it begins so every
// row written in it carries the same time.
type Tx struct {
	q        querier
	h        txHandle
	jobs     queue
	now      time.Time
	enqueued bool // a job was enqueued: tell the queue once committed
	pg       bool // PostgreSQL: the few expressions the dialects spell apart
}

// Now is the transaction's time.
func (tx *Tx) Now() time.Time { return tx.now }

// InTx runs fn in a transaction, committing if fn returns nil. Transactions
// are serialized, on SQLite by its single writer and on PostgreSQL by a
// transaction-scoped advisory lock every replica takes, so the rules the
// provision package composes from reads and writes hold as on one process.
func (d *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	return d.noteWrite(ctx, d.run(ctx, d.eng.begin, true, fn))
}

// View runs fn in a read-only transaction that sees one snapshot. On
// PostgreSQL it does not wait for writers, so the reads every long poll and
// page make scale with replicas; fn must not write (PostgreSQL refuses it).
func (d *DB) View(ctx context.Context, fn func(*Tx) error) error {
	return d.run(ctx, d.eng.beginRead, false, fn)
}

// run runs fn in a transaction from begin; one that may write (InTx's)
// also makes the cached check-in statuses forgotten as it commits.
func (d *DB) run(ctx context.Context, begin func(context.Context) (txHandle, error), write bool, fn func(*Tx) error) error {
	h, err := begin(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer h.rollback(context.WithoutCancel(ctx))
	// The clock is cut to the precision rows keep, so tx.Now() and the times
	// set on values written in the transaction equal what is read back.
	tx := &Tx{q: h.querier(), h: h, jobs: d.jobs, now: d.Now().UTC().Truncate(time.Microsecond), pg: d.Postgres()}
	if err := fn(tx); err != nil {
		return err
	}
	if err := d.commit(ctx, h, write); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	if tx.enqueued {
		tx.jobs.committed()
	}
	return nil
}

// commit commits h; for a transaction that may have written, no cached
// check-in status is served from before the commit until all are forgotten
// after it, so a wait arriving once it has committed reads what it wrote.
func (d *DB) commit(ctx context.Context, h txHandle, write bool) error {
	if !write || d.Postgres() { // PostgreSQL keeps no statuses
		return h.commit(ctx)
	}
	done := d.statuses.committingTx()
	defer done()
	return h.commit(ctx)
}

// noLimit reads a limit of zero or less as none, in a form both dialects
// take (SQLite's -1 is an error on PostgreSQL; LIMIT 0 returns nothing).
func noLimit(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	return int64(limit)
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
