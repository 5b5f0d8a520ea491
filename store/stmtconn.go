package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
)

// SQLite's driver parses and plans a query's text on every ExecContext and
// QueryContext of a connection, then throws the plan away: a quarter of a
// busy server's time went there, in River's queries and ours alike. The
// connector below gives each connection statements prepared once per query
// text and kept while the connection lives, below database/sql, so every
// caller of the pool gains without changing how it calls.

// maxConnStmts bounds the statements one connection keeps. The queries run
// are a fixed set (River's and the store's) plus a few shapes built from
// filters and id lists; past the bound an idle statement is dropped.
const maxConnStmts = 512

// stmtConnector opens connections that keep their prepared statements.
type stmtConnector struct{ driver.Connector }

func (c stmtConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newStmtConn(conn)
}

// driverConn is what the SQLite driver's connections implement, and what
// stmtConn forwards, so database/sql keeps its context-aware paths.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// keptStmt is a statement of a connection; busy while rows it returned are
// open, when the next call of the same text prepares one of its own.
type keptStmt struct {
	s    driver.Stmt
	busy bool
}

// stmtConn is one connection and its statements by query text.
// database/sql never uses a connection from two goroutines at once (a
// result's Close included), so it needs no lock.
type stmtConn struct {
	driverConn
	stmts map[string]*keptStmt
}

var errConnFeatures = errors.New("store: the SQLite driver's connection lacks the context-aware methods the statement cache forwards")

func newStmtConn(c driver.Conn) (*stmtConn, error) {
	dc, ok := c.(driverConn)
	if !ok {
		c.Close()
		return nil, errConnFeatures
	}
	return &stmtConn{driverConn: dc, stmts: map[string]*keptStmt{}}, nil
}

// Unwrap is the driver's connection, for the driver's helpers that look
// through wrappers (sqlite.Limit).
func (c *stmtConn) Unwrap() driver.Conn { return c.driverConn }

// Close finalizes the kept statements, then closes the connection.
func (c *stmtConn) Close() error {
	var errs []error
	for q, k := range c.stmts {
		errs = append(errs, k.s.Close())
		delete(c.stmts, q)
	}
	errs = append(errs, c.driverConn.Close())
	return errors.Join(errs...)
}

// stmt returns the kept statement for query, preparing it the first time;
// one that is busy, or cannot be kept, gets a statement of its own, which
// the caller closes (own).
func (c *stmtConn) stmt(ctx context.Context, query string) (k *keptStmt, own bool, err error) {
	if k, ok := c.stmts[query]; ok && !k.busy {
		return k, false, nil
	}
	s, err := c.driverConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	k = &keptStmt{s: s}
	if _, taken := c.stmts[query]; taken {
		return k, true, nil
	}
	c.evict()
	c.stmts[query] = k
	return k, false, nil
}

// evict makes room for one more statement by closing an idle one.
func (c *stmtConn) evict() {
	if len(c.stmts) < maxConnStmts {
		return
	}
	for q, k := range c.stmts {
		if !k.busy {
			k.s.Close()
			delete(c.stmts, q)
			return
		}
	}
}

// drop forgets a kept statement after it failed: the failure may have left
// it unusable (an interrupted step), and preparing again is cheap next to
// finding out.
func (c *stmtConn) drop(query string, k *keptStmt) {
	if c.stmts[query] == k {
		delete(c.stmts, query)
	}
	k.s.Close()
}

func (c *stmtConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	k, own, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	res, err := k.s.(driver.StmtExecContext).ExecContext(ctx, args)
	switch {
	case own:
		k.s.Close()
	case err != nil:
		c.drop(query, k)
	}
	return res, err
}

func (c *stmtConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	k, own, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	r, err := k.s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		if own {
			k.s.Close()
		} else {
			c.drop(query, k)
		}
		return nil, err
	}
	k.busy = true
	return &keptRows{Rows: r, conn: c, query: query, k: k, own: own}, nil
}

// keptRows are a kept statement's rows; closing them frees the statement
// for the next call, or closes a statement of their own.
type keptRows struct {
	driver.Rows
	conn   *stmtConn
	query  string
	k      *keptStmt
	own    bool
	closed bool
}

func (r *keptRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close()
	r.k.busy = false
	switch {
	case r.own:
		r.k.s.Close()
	case err != nil:
		r.conn.drop(r.query, r.k)
	}
	return err
}

// The SQLite driver's rows describe their columns; keptRows passes that on
// for sql.Rows.ColumnTypes.

func (r *keptRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *keptRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *keptRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *keptRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *keptRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
