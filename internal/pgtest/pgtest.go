// Package pgtest gives each test its own PostgreSQL schema on the server
// named by GATEHOUSE_TEST_POSTGRES, so tests run in parallel on one
// database without seeing each other's rows or job queues.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env names the variable holding the test server's URL.
const Env = "GATEHOUSE_TEST_POSTGRES"

// URL returns the URL of a new, empty schema that is dropped when the test
// ends, or skips the test when Env is unset.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		t.Skipf("%s is not set: set it to a PostgreSQL URL (.ci/run sets postgres://postgres@127.0.0.1:5432/test) to run this test on PostgreSQL", Env)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL", Env)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	exec(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", Env, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
