package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/internal/pgtest"
)

// The batcher writes what queued during a flush as one batch: while the
// first caller's own flush is held, five more queue, and the next flush
// takes all five at once.
func TestNonceBatcherGroupsWaiting(t *testing.T) {
	t.Parallel()
	var b nonceBatcher
	held, release := make(chan struct{}), make(chan struct{})
	sizes := make(chan int, 8)
	flush := func(_ context.Context, batch []*nonceUse) {
		sizes <- len(batch)
		if len(batch) == 1 && batch[0].nonce == "first" {
			close(held)
			<-release
		}
		for _, u := range batch {
			close(u.done)
		}
	}
	uses := []*nonceUse{{nonce: "first", done: make(chan struct{})}}
	go b.add(t.Context(), uses[0], flush)
	<-held
	for range 5 {
		u := &nonceUse{nonce: "later", done: make(chan struct{})}
		uses = append(uses, u)
		b.add(t.Context(), u, flush)
	}
	close(release)
	for _, u := range uses {
		<-u.done
	}
	if got := []int{<-sizes, <-sizes}; got[0] != 1 || got[1] != 5 {
		t.Errorf("batches of %v, want [1 5]", got)
	}
}

// Two uses of one nonce in the same batch: the first is fresh, the second
// a replay, and the database holds one row.
func TestSQLiteNonceDuplicateInBatch(t *testing.T) {
	t.Parallel()
	testDuplicateInBatch(t, filepath.Join(t.TempDir(), "gatehouse.db"))
}

func TestPostgresNonceDuplicateInBatch(t *testing.T) {
	t.Parallel()
	testDuplicateInBatch(t, pgtest.URL(t))
}

func testDuplicateInBatch(t *testing.T, dsn string) {
	d, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	exp := micros(time.Now().Add(time.Hour))
	use := func(key, nonce string) *nonceUse {
		return &nonceUse{key: key, nonce: nonce, expires: exp, done: make(chan struct{})}
	}
	batch := []*nonceUse{use("fp", "a"), use("fp", "b"), use("fp", "a"), use("fp2", "a"), use("fp", "b")}
	d.flushNonces(t.Context(), batch)
	want := []bool{true, true, false, true, false}
	for i, u := range batch {
		<-u.done
		if u.err != nil || u.fresh != want[i] {
			t.Errorf("use %d (%s %s) = %v, %v; want %v", i, u.key, u.nonce, u.fresh, u.err, want[i])
		}
	}
	// And a later batch sees them all as used.
	again := []*nonceUse{use("fp", "a"), use("fp", "b"), use("fp2", "a"), use("fp2", "b")}
	d.flushNonces(t.Context(), again)
	for i, u := range again {
		if want := i == 3; u.err != nil || u.fresh != want {
			t.Errorf("second batch use %d (%s %s) = %v, %v; want %v", i, u.key, u.nonce, u.fresh, u.err, want)
		}
	}
}
