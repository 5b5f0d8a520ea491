package store_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	// The unexpired nonce survived and still counts as used.
	mustUseNonce(t, db, "fp", "c", t0.Add(time.Hour), false)
}
