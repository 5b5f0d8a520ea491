package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/pgtest"
	"gatehouse/store"
)

func mustUseNonce(t *testing.T, db *store.DB, key, nonce string, expires time.Time, want bool) {
	t.Helper()
	fresh, err := db.UseNonce(t.Context(), key, nonce, expires)
	if err != nil {
		t.Fatalf("UseNonce(%s, %s): %v", key, nonce, err)
	}
	if fresh != want {
		t.Fatalf("UseNonce(%s, %s) fresh = %v, want %v", key, nonce, fresh, want)
	}
}

func testUseNonce(t *testing.T, db *store.DB, clk *clock) {
	exp := t0.Add(10 * time.Minute)
	mustUseNonce(t, db, "fp-a", "n1", exp, true)
	mustUseNonce(t, db, "fp-a", "n1", exp, false)
	// A nonce belongs to its key: another key may use the same value.
	mustUseNonce(t, db, "fp-b", "n1", exp, true)
	mustUseNonce(t, db, "fp-a", "n2", exp, true)
	// Past its expiry a row no longer counts, pruned or not.
	clk.Set(exp)
	mustUseNonce(t, db, "fp-a", "n1", exp.Add(10*time.Minute), true)
	mustUseNonce(t, db, "fp-a", "n1", exp.Add(10*time.Minute), false)
}

func testUseNonceConcurrent(t *testing.T, db *store.DB, _ *clock) {
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := db.UseNonce(t.Context(), "fp", "same", t0.Add(time.Hour))
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d of 8 racing uses were fresh, want exactly 1", fresh.Load())
	}
}

func testDeleteExpiredNonces(t *testing.T, db *store.DB, clk *clock) {
	for i, n := range []string{"a", "b", "c"} {
		mustUseNonce(t, db, "fp", n, t0.Add(time.Duration(i+1)*time.Minute), true)
	}
	clk.Set(t0.Add(2 * time.Minute))
	n, err := db.DeleteExpiredNonces(t.Context(), 1)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredNonces(limit 1) = %d, %v; want 1", n, err)
	}
	n, err = db.DeleteExpiredNonces(t.Context(), 100)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredNonces = %d, %v; want the other expired one", n, err)
	}
	// The unexpired nonce survived and still counts as used: a replay
	// carries the expiry it was first stored with.
	mustUseNonce(t, db, "fp", "c", t0.Add(3*time.Minute), false)
}

// testUseNonceManyRacing: uses of several nonces, each raced by several
// callers released together, so batches hold duplicates and distinct
// nonces side by side; each nonce is fresh exactly once, and a nonce of
// one key does not shadow the same value of another.
func testUseNonceManyRacing(t *testing.T, db *store.DB, _ *clock) {
	const nonces, racers = 16, 8
	var fresh [2][nonces]atomic.Int32
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range 2 {
		for n := range nonces {
			for range racers {
				wg.Go(func() {
					<-start
					ok, err := db.UseNonce(t.Context(), fmt.Sprintf("fp-%d", k), fmt.Sprintf("n%02d", n), t0.Add(time.Hour))
					if err != nil {
						t.Error(err)
					}
					if ok {
						fresh[k][n].Add(1)
					}
				})
			}
		}
	}
	close(start)
	wg.Wait()
	for k := range fresh {
		for n := range fresh[k] {
			if got := fresh[k][n].Load(); got != 1 {
				t.Errorf("fp-%d n%02d: %d of %d racing uses fresh, want exactly 1", k, n, got, racers)
			}
		}
	}
}

// testUseNonceClosed: a database that cannot record the nonce makes
// UseNonce fail, never answer fresh.
func testUseNonceClosed(t *testing.T, db *store.DB, _ *clock) {
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fresh, err := db.UseNonce(t.Context(), "fp", "n1", t0.Add(time.Hour))
	if err == nil || fresh {
		t.Fatalf("UseNonce on a closed database = %v, %v; want an error and not fresh", fresh, err)
	}
}

// A nonce recorded before a restart is still refused after it: it was
// committed before UseNonce answered.
func TestSQLiteNonceSurvivesReopen(t *testing.T) {
	t.Parallel()
	testNonceSurvivesReopen(t, filepath.Join(t.TempDir(), "gatehouse.db"))
}

func TestPostgresNonceSurvivesReopen(t *testing.T) {
	t.Parallel()
	testNonceSurvivesReopen(t, pgtest.URL(t))
}

func testNonceSurvivesReopen(t *testing.T, dsn string) {
	exp := time.Now().Add(time.Hour)
	db, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	mustUseNonce(t, db, "fp", "before", exp, true)
	mustClose(t, db)
	db, err = store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustUseNonce(t, db, "fp", "before", exp, false)
	mustUseNonce(t, db, "fp", "after", exp, true)
}

// A second process on the same database refuses what the first recorded,
// even while the first is open and batching its own uses.
func TestSQLiteNonceSharedByTwoProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a, b := openSQLite(t, path), openSQLite(t, path)
	testNonceShared(t, a, b)
}

func TestPostgresNonceSharedByTwoProcesses(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	a := openPostgres(t, dsn)
	testNonceShared(t, a, openPostgres(t, dsn))
}

func testNonceShared(t *testing.T, a, b *store.DB) {
	exp := time.Now().Add(time.Hour)
	var fresh atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 16 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			<-start
			ok, err := db.UseNonce(context.Background(), "fp", "shared", exp)
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d of 16 uses across two processes fresh, want exactly 1", fresh.Load())
	}
}

// A database whose nonce table is gone fails UseNonce for every caller of
// the batch: nothing is answered fresh that was not recorded.
func TestSQLiteNonceFailingStatement(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	if _, err := db.SQL().ExecContext(t.Context(), `DROP TABLE nonces`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			fresh, err := db.UseNonce(t.Context(), "fp", fmt.Sprintf("n%d", i), time.Now().Add(time.Hour))
			if err == nil || fresh {
				t.Errorf("UseNonce without its table = %v, %v; want an error and not fresh", fresh, err)
			}
		})
	}
	wg.Wait()
}
