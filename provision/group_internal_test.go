package provision

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/internal/pgtest"
	"gatehouse/store"
)

// TestGroupCommit runs on SQLite and on PostgreSQL.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	open := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "g.db") },
		"postgres": func(t *testing.T) string { return pgtest.URL(t) },
	}
	for name, dsn := range open {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("PartsFailAlone", func(t *testing.T) { testGroupPartsFailAlone(t, dsn(t)) })
			t.Run("NoTransactionFailsAll", func(t *testing.T) { testGroupNoTransaction(t, dsn(t)) })
		})
	}
}

func openGroupDB(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testGroupPartsFailAlone queues parts while another transaction holds
// the database, so they are written as one group: each caller gets its own
// part's outcome (a failure, a refused statement, a panic stay with their
// part), and the others commit together.
func testGroupPartsFailAlone(t *testing.T, dsn string) {
	ctx := context.Background()
	db := openGroupDB(t, dsn)
	var g groupCommit
	const n = 8
	key := func(fp, id string) gatehouse.DeviceKey {
		return gatehouse.DeviceKey{Fingerprint: fp, KeyType: "ed25519", PublicKey: []byte(id), SealKey: []byte("s")}
	}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		return tx.CreateDevice(ctx, &gatehouse.Device{ID: "dev-xx", State: gatehouse.StatePending, MAC: "02:00:00:00:00:01", Fingerprint: "fp-taken"}, key("fp-taken", "dev-xx"))
	})
	if err != nil {
		t.Fatal(err)
	}
	hold, held := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- db.InTx(ctx, func(*store.Tx) error {
			close(held)
			<-hold
			return nil
		})
	}()
	<-held

	errPart := errors.New("the part fails")
	var wg sync.WaitGroup
	errs, clocks := make([]error, n), make([]time.Time, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = g.do(ctx, db, func(ctx context.Context, tx *store.Tx) error {
				clocks[i] = tx.Now()
				id := fmt.Sprintf("dev-%02d", i)
				d := &gatehouse.Device{ID: id, State: gatehouse.StatePending, MAC: "02:00:00:00:00:01", Fingerprint: "fp-" + id}
				if i == 5 {
					d.Fingerprint = "fp-taken" // the database refuses it
				}
				if err := tx.CreateDevice(ctx, d, key(d.Fingerprint, id)); err != nil {
					return err
				}
				switch i {
				case 3:
					return errPart
				case 6:
					panic("part 6")
				}
				return nil
			})
		})
	}
	waitQueued(t, &g, n)
	close(hold)
	wg.Wait()
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}

	for i, err := range errs {
		want := i != 3 && i != 5 && i != 6
		if (err == nil) != want {
			t.Errorf("part %d: %v", i, err)
		}
		if !errors.Is(err, errPart) && i == 3 {
			t.Errorf("part 3 got %v, want its own error", err)
		}
		err = db.View(ctx, func(tx *store.Tx) error { _, err := tx.Device(ctx, fmt.Sprintf("dev-%02d", i)); return err })
		if (err == nil) != want {
			t.Errorf("device of part %d: %v; kept is %v", i, err, want)
		}
		if !clocks[i].Equal(clocks[0]) {
			t.Errorf("part %d ran at %v, part 0 at %v: not one transaction", i, clocks[i], clocks[0])
		}
	}
}

// waitQueued waits until n parts wait for the database.
func waitQueued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		g.mu.Lock()
		queued := len(g.waiting)
		g.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d parts queued, want %d", queued, n)
		}
		runtime.Gosched()
	}
}

// testGroupNoTransaction: when the shared transaction cannot begin, every
// part fails, and a later part leads a group of its own.
func testGroupNoTransaction(t *testing.T, dsn string) {
	ctx := context.Background()
	db := openGroupDB(t, dsn)
	db.Close()
	var g groupCommit
	ran := false
	if err := g.do(ctx, db, func(context.Context, *store.Tx) error { ran = true; return nil }); err == nil || ran {
		t.Fatalf("part on a closed database: err %v, ran %v", err, ran)
	}
	if err := g.do(ctx, db, func(context.Context, *store.Tx) error { return nil }); err == nil {
		t.Fatal("second part on a closed database did not fail")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.leading || len(g.waiting) != 0 {
		t.Fatalf("group left leading %v with %d waiting", g.leading, len(g.waiting))
	}
}
