package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// kept returns how many statements the pool's one connection keeps.
func kept(t *testing.T, db *sql.DB) int {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := -1
	if err := c.Raw(func(dc any) error { n = len(dc.(*stmtConn).stmts); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func openStmtTest(t *testing.T) *sql.DB {
	t.Helper()
	e, err := openSQLite(filepath.Join(t.TempDir(), "stmt.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close() })
	if _, err := e.db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"a", "b", "c"} {
		if _, err := e.db.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i+1, v); err != nil {
			t.Fatal(err)
		}
	}
	return e.db
}

func TestStmtConnKeepsOnePerQuery(t *testing.T) {
	db := openStmtTest(t)
	before := kept(t, db)
	for i := 1; i <= 3; i++ {
		var v string
		if err := db.QueryRow(`SELECT v FROM t WHERE k = ?`, i).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if want := string(rune('a' + i - 1)); v != want {
			t.Fatalf("k=%d: %q, want %q", i, v, want)
		}
	}
	if got := kept(t, db); got != before+1 {
		t.Fatalf("kept %d statements after one query run thrice, want %d", got, before+1)
	}
}

// A query run again while its first rows are still open gets a statement
// of its own; both read their own rows.
func TestStmtConnBusyStatement(t *testing.T) {
	db := openStmtTest(t)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT v FROM t WHERE k >= ? ORDER BY k`
	outer, err := tx.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var v string
		if err := outer.Scan(&v); err != nil {
			t.Fatal(err)
		}
		var inner []string
		r, err := tx.QueryContext(ctx, q, 3)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var w string
			if err := r.Scan(&w); err != nil {
				t.Fatal(err)
			}
			inner = append(inner, w)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if len(inner) != 1 || inner[0] != "c" {
			t.Fatalf("inner query read %q, want [c]", inner)
		}
		got = append(got, v)
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if len(got) != 3 || got[0] != "a" || got[2] != "c" {
		t.Fatalf("outer query read %q, want [a b c]", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A failed statement is dropped, and the query works again after.
func TestStmtConnFailure(t *testing.T) {
	db := openStmtTest(t)
	const ins = `INSERT INTO t (k, v) VALUES (?, ?)`
	if _, err := db.Exec(ins, 1, "again"); err == nil {
		t.Fatal("duplicate key inserted")
	}
	if _, err := db.Exec(ins, 4, "d"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("count %d, %v; want 4", n, err)
	}
}
