package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Advisory lock keys; arbitrary, fixed, and distinct from each other.
const (
	// txLockKey serializes gatehouse's transactions across replicas.
	txLockKey int64 = 0x6761746568_01
	// schemaLockKey lets one process at a time migrate.
	schemaLockKey int64 = 0x6761746568_02
)

// postgresEngine is a pgx pool on a PostgreSQL database shared by every
// replica.
type postgresEngine struct{ db *pgxpool.Pool }

func openPostgres(ctx context.Context, dsn string) (*postgresEngine, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message repeats the URL, password included.
		return nil, fmt.Errorf("store: the PostgreSQL URL is malformed")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open PostgreSQL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL at %s: %w", cfg.ConnConfig.Host, err)
	}
	return &postgresEngine{db: pool}, nil
}

func (e *postgresEngine) pool() querier                  { return pgQuerier{e.db} }
func (e *postgresEngine) ping(ctx context.Context) error { return e.db.Ping(ctx) }
func (e *postgresEngine) close() error                   { e.db.Close(); return nil }
func (e *postgresEngine) migrations() string             { return "migrations/postgres" }
func (e *postgresEngine) sqlDB() *sql.DB                 { return nil }

func (e *postgresEngine) begin(ctx context.Context) (txHandle, error) {
	tx, err := e.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, txLockKey); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return postgresTx{tx}, nil
}

func (e *postgresEngine) beginRead(ctx context.Context) (txHandle, error) {
	tx, err := e.db.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	return postgresTx{tx}, nil
}

// lockSchema holds a session advisory lock on one pooled connection until
// unlock, so replicas starting together migrate one after the other.
func (e *postgresEngine) lockSchema(ctx context.Context) (func(), error) {
	conn, err := e.db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: schema lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, schemaLockKey); err != nil {
		conn.Release()
		return nil, fmt.Errorf("store: schema lock: %w", err)
	}
	return func() {
		conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, schemaLockKey)
		conn.Release()
	}, nil
}

func (e *postgresEngine) migrateQueue(ctx context.Context) error {
	m, err := rivermigrate.New(riverpgxv5.New(e.db), nil)
	if err != nil {
		return fmt.Errorf("store: job queue migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("store: job queue migrations: %w", err)
	}
	return nil
}

func (e *postgresEngine) newQueue(cfg *river.Config) (queue, error) {
	c, err := river.NewClient(riverpgxv5.New(e.db), cfg)
	if err != nil {
		return nil, err
	}
	return riverQueue[pgx.Tx]{Client: c}, nil
}

type postgresTx struct{ tx pgx.Tx }

func (t postgresTx) querier() querier                   { return pgQuerier{t.tx} }
func (t postgresTx) raw() any                           { return t.tx }
func (t postgresTx) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t postgresTx) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }
