package protocol_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/protocol"
)

var _ protocol.NonceStore = (*protocol.NonceCache)(nil)

func TestNonceCacheReplay(t *testing.T) {
	c := protocol.NewNonceCache()
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	if err := c.UseNonce(ctx, "fp1", "n1", exp); err != nil {
		t.Fatal(err)
	}
	if err := c.UseNonce(ctx, "fp1", "n1", exp); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("second use: err = %v, want ErrReplay", err)
	}
	// Nonces are per key: another device may pick the same one.
	if err := c.UseNonce(ctx, "fp2", "n1", exp); err != nil {
		t.Errorf("same nonce, other key: %v", err)
	}
}

func TestNonceCacheZeroValue(t *testing.T) {
	var c protocol.NonceCache
	exp := time.Now().Add(time.Minute)
	if err := c.UseNonce(context.Background(), "fp", "n", exp); err != nil {
		t.Fatal(err)
	}
	if err := c.UseNonce(context.Background(), "fp", "n", exp); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("err = %v, want ErrReplay", err)
	}
}

func TestNonceCacheConcurrent(t *testing.T) {
	c := protocol.NewNonceCache()
	exp := time.Now().Add(time.Minute)
	const workers, perWorker = 16, 500
	var wins, failures atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if err := c.UseNonce(context.Background(), "fp", fmt.Sprintf("%d-%d", w, i), exp); err != nil {
					failures.Add(1)
				}
				if c.UseNonce(context.Background(), "fp", fmt.Sprintf("shared-%d", i), exp) == nil {
					wins.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d unique nonces were refused", failures.Load())
	}
	if wins.Load() != perWorker {
		t.Errorf("shared nonces accepted %d times, want exactly %d", wins.Load(), perWorker)
	}
	if got, want := c.Len(), workers*perWorker+perWorker; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
}

func TestNonceCacheExpiry(t *testing.T) {
	c := protocol.NewNonceCache()
	ctx := context.Background()
	for i := range 100 {
		if err := c.UseNonce(ctx, "fp", fmt.Sprint(i), time.Now().Add(20*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.UseNonce(ctx, "fp", "keep", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	// An expired nonce is forgotten: its timestamp would be refused anyway.
	if err := c.UseNonce(ctx, "fp", "0", time.Now().Add(20*time.Millisecond)); err != nil {
		t.Errorf("expired nonce refused: %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	c.Purge()
	if n := c.Len(); n != 1 {
		t.Errorf("Len after Purge = %d, want 1 (the unexpired one)", n)
	}
	if err := c.UseNonce(ctx, "fp", "keep", time.Now().Add(time.Hour)); !errors.Is(err, protocol.ErrReplay) {
		t.Errorf("Purge dropped an unexpired nonce: %v", err)
	}
}

// Without anyone calling Purge, inserts alone must keep memory bounded.
func TestNonceCachePurgesWhileInserting(t *testing.T) {
	c := protocol.NewNonceCache()
	past := time.Now().Add(-time.Second)
	const inserts = 200_000
	for i := range inserts {
		if err := c.UseNonce(context.Background(), "fp", fmt.Sprint(i), past); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n >= inserts/2 {
		t.Errorf("Len = %d after %d expired inserts; expired nonces are not purged", n, inserts)
	}
}
