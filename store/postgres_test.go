package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gatehouse/audit"
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

// TestPostgresListenReconnects: a listener whose connection is cut
// connects again by itself, says so, and hears what is sent afterwards.
func TestPostgresListenReconnects(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	db := openPostgres(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	connected, got := make(chan struct{}, 4), make(chan string, 16)
	ended := make(chan error, 1)
	channel := "test_" + strings.ReplaceAll(t.Name(), "/", "_")
	go func() {
		ended <- db.Listen(ctx, channel, func() { connected <- struct{}{} }, func(p string) { got <- p })
	}()
	within := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s within 30 s", what)
		}
	}
	hear := func(want string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			if err := db.Broadcast(ctx, channel, want); err != nil {
				t.Fatal(err)
			}
			select {
			case p := <-got:
				if p == want {
					return
				}
			case <-time.After(200 * time.Millisecond):
			case <-deadline:
				t.Fatalf("%q never heard", want)
			}
		}
	}
	within("first connection", connected)
	hear("before")
	// Cut every gatehouse listener of this database; others reconnect too.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, store.ListenerApplication); err != nil {
		t.Fatal(err)
	}
	within("reconnection", connected)
	if db.ListenError() == nil {
		t.Error("ListenError() = nil after the connection was cut")
	}
	hear("after")
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("Listen returned %v, want context.Canceled", err)
	}
}

func TestSQLiteHasNothingToListenTo(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "g.db"))
	if err := db.Listen(t.Context(), "x", func() {}, func(string) {}); !errors.Is(err, store.ErrSingleProcess) {
		t.Errorf("Listen on SQLite = %v, want ErrSingleProcess", err)
	}
	if err := db.Broadcast(t.Context(), "x", "y"); err != nil {
		t.Errorf("Broadcast on SQLite = %v, want a no-op", err)
	}
}

// TestPostgresAuditIsAppendOnly: the trigger refuses changes to the log.
func TestPostgresAuditIsAppendOnly(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	db := openPostgres(t, dsn)
	appendN(t, db, 2)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{`UPDATE audit_log SET result = 'ok, honestly' WHERE seq = 1`, `DELETE FROM audit_log WHERE seq = 2`} {
		if _, err := conn.Exec(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
}

// TestPostgresSharedQuota: two processes' handles on one bucket of 10 get
// 10 calls between them, not 10 each, and the next waits for the refill.
func TestPostgresSharedQuota(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	replicas := []*store.DB{openPostgres(t, dsn), openPostgres(t, dsn)}
	const burst = 10
	got := make(chan bool, 4*burst)
	var wg sync.WaitGroup
	for i := range 4 * burst {
		q := replicas[i%2].Quota("dps test", burst, 0.0001) // one token per 3 hours
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			got <- q.Wait(ctx) == nil
		})
	}
	wg.Wait()
	close(got)
	n := 0
	for ok := range got {
		if ok {
			n++
		}
	}
	if n != burst {
		t.Errorf("%d calls went through two replicas' handles on a bucket of %d", n, burst)
	}
	// A fast refill: the bucket is empty, so the next call waits about a
	// refill's time rather than failing.
	fast := replicas[0].Quota("dps fast", 1, 20)
	for range 2 {
		if err := fast.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPostgresViewRefusesWrites: View is read-only, so code that writes in
// it by mistake fails on PostgreSQL rather than racing the writers' lock.
func TestPostgresViewRefusesWrites(t *testing.T) {
	t.Parallel()
	db := openPostgres(t, pgtest.URL(t))
	err := db.View(t.Context(), func(tx *store.Tx) error {
		return tx.AppendAudit(t.Context(), &audit.Entry{Actor: "a", Action: "device.approve", Result: "ok"})
	})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write in View: %v, want refused as read-only", err)
	}
}
