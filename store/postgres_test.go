package store_test

import (
	"context"
	"testing"

	"gatehouse/internal/pgtest"
	"gatehouse/store"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	runConformance(t, func(t *testing.T) *store.DB {
		t.Helper()
		return openPostgres(t, pgtest.URL(t))
	})
}

// openPostgres opens the database at dsn and closes it when the test ends.
func openPostgres(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
