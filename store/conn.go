package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what the store's methods need from a pool or a transaction.
// Queries are written once, with '?' placeholders and SQL both SQLite and
// PostgreSQL accept; each dialect's adapter below runs them.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (result, error)
	QueryContext(ctx context.Context, query string, args ...any) (rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) rowScanner
}

type result interface{ RowsAffected() (int64, error) }

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// sqlConn is a *sql.DB or a *sql.Tx.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlQuerier runs queries on SQLite through statements prepared once and
// kept (stmts): parsing and planning the same SQL on every call was a third
// of the server's time. tx, when set, is the transaction they run in.
type sqlQuerier struct {
	c     sqlConn
	tx    *sql.Tx
	stmts *stmtCache
}

// stmt returns the kept statement for query, bound to the transaction if
// there is one; nil when the query is not kept (the cache is full), or
// when the connections keep their own (no stmts).
func (q sqlQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	if q.stmts == nil {
		return nil
	}
	st := q.stmts.get(ctx, query, q.tx != nil)
	if st != nil && q.tx != nil {
		// On the one connection database/sql reuses the prepared
		// statement; the bound copy is released when the transaction ends.
		st = q.tx.StmtContext(ctx, st)
	}
	return st
}

func (q sqlQuerier) ExecContext(ctx context.Context, query string, args ...any) (result, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.c.ExecContext(ctx, query, args...)
}

func (q sqlQuerier) QueryContext(ctx context.Context, query string, args ...any) (rows, error) {
	var r *sql.Rows
	var err error
	if st := q.stmt(ctx, query); st != nil {
		r, err = st.QueryContext(ctx, args...)
	} else {
		r, err = q.c.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (q sqlQuerier) QueryRowContext(ctx context.Context, query string, args ...any) rowScanner {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.c.QueryRowContext(ctx, query, args...)
}

// maxStmts bounds the kept statements. The store's queries are a fixed set
// plus a few shapes built from filters and id lists; past the bound a query
// simply runs unprepared.
const maxStmts = 512

// stmtCache keeps statements prepared on the SQLite pool for its life.
// The pool has one connection, which a transaction holds: a query first met
// in a transaction runs unprepared and is prepared once the transaction has
// given the connection back (prepareWanted).
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
	failed map[string]bool // cannot be prepared (several statements, say)
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}, wanted: map[string]bool{}, failed: map[string]bool{}}
}

func (c *stmtCache) get(ctx context.Context, query string, inTx bool) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.m[query]
	full, failed := len(c.m)+len(c.wanted) >= maxStmts, c.failed[query]
	if !ok && inTx && !full && !failed {
		c.wanted[query] = true
	}
	c.mu.Unlock()
	if ok || inTx || full || failed {
		return st
	}
	return c.prepare(ctx, query)
}

// prepare prepares query on the pool and keeps it; nil if it cannot be.
func (c *stmtCache) prepare(ctx context.Context, query string) *sql.Stmt {
	st, err := c.db.PrepareContext(context.WithoutCancel(ctx), query)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.wanted, query)
	if err != nil {
		c.failed[query] = true
		return nil
	}
	if old, ok := c.m[query]; ok {
		st.Close()
		return old
	}
	c.m[query] = st
	return st
}

// prepareWanted prepares the queries transactions met, once the connection
// is free again.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	var qs []string
	for q := range c.wanted {
		qs = append(qs, q)
	}
	c.mu.Unlock()
	for _, q := range qs {
		c.prepare(ctx, q)
	}
}

// close closes every kept statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// pgConn is a *pgxpool.Pool or a pgx.Tx.
type pgConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgQuerier struct{ c pgConn }

func (q pgQuerier) ExecContext(ctx context.Context, query string, args ...any) (result, error) {
	tag, err := q.c.Exec(ctx, rebind(query), args...)
	return affected(tag.RowsAffected()), err
}

func (q pgQuerier) QueryContext(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := q.c.Query(ctx, rebind(query), args...)
	if err != nil {
		return nil, err
	}
	return pgRows{r}, nil
}

func (q pgQuerier) QueryRowContext(ctx context.Context, query string, args ...any) rowScanner {
	return pgRow{q.c.QueryRow(ctx, rebind(query), args...)}
}

type affected int64

func (n affected) RowsAffected() (int64, error) { return int64(n), nil }

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error { r.Rows.Close(); return nil }

// pgRow reports a missing row as database/sql does, so translate and the
// callers that test for sql.ErrNoRows need not know the dialect.
type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// rebound caches rebind's answers: the store's queries are a fixed set of
// constants (plus a few built from filters), and pgx keeps one prepared
// statement per distinct text anyway.
var rebound sync.Map

// rebind turns '?' placeholders into PostgreSQL's $1, $2, ... leaving any
// '?' inside a quoted literal or identifier, or a "--" comment, alone.
func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n, quote := 0, byte(0)
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote == '-':
			if c == '\n' {
				quote = 0
			}
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			quote = '-'
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}
