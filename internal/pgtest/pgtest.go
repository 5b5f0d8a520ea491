// Package pgtest gives each test its own PostgreSQL schema on the server
// named by GATEHOUSE_TEST_POSTGRES, so tests run in parallel on one
// database without seeing each other's rows or job queues.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	dsn, drop, err := NewSchema(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// NewSchema makes a new, empty schema on the server at base and returns a
// URL whose connections use it, and drop, which removes the schema and all
// in it. It is URL for programs that are not tests (the reliability suite).
func NewSchema(ctx context.Context, base string) (dsn string, drop func(context.Context) error, err error) {
	u, err := url.Parse(base)
	if err != nil {
		// Not the error itself: it would repeat the URL and its password.
		return "", nil, fmt.Errorf("%s is not a URL", Env)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if err := exec(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func(ctx context.Context) error { return exec(ctx, base, "DROP SCHEMA "+schema+" CASCADE") }, nil
}

func exec(ctx context.Context, dsn, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", Env, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
