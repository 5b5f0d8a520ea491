package server

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/store"
)

func TestDeviceQueueRefusesPastItsBound(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := provision.New(db, provision.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(svc)
	s.devSlots = make(chan struct{}, deviceSlots)
	release, err := s.queuedSlot(ctx)
	if err != nil {
		t.Fatalf("an empty queue refused: %v", err)
	}
	release()
	s.devQueued.Store(maxDeviceQueue) // as if that many waited for a slot
	_, err = s.queuedSlot(ctx)
	if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Fatalf("a full queue answered %v; want %s", err, gatehouse.EUNAVAILABLE)
	}
	// The turned-away pace: 10 s at least, less at most 10% jitter.
	if d := gatehouse.ErrorRetryAfter(err); d < 9*time.Second {
		t.Errorf("Retry-After %v; want the turned-away waiters' pace, 9 s or more", d)
	}
	if n := s.devQueued.Load(); n != maxDeviceQueue {
		t.Errorf("the refusal left the queue at %d; want %d", n, maxDeviceQueue)
	}
}
