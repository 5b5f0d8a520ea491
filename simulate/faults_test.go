package simulate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/simulate"
)

func TestFailNext(t *testing.T) {
	boom := errors.New("500 boom")
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			b.faults.FailNext(2, boom)
			for i := range 2 {
				err := b.call(ctx, i)
				if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), b.service) {
					t.Fatalf("call %d: err = %v, want %q wrapping boom", i, err, b.service)
				}
			}
			if b.size() != 0 {
				t.Fatalf("failed calls changed state: size %d", b.size())
			}
			if err := b.call(ctx, 0); err != nil {
				t.Fatalf("third call: %v", err)
			}
			if b.size() != 1 || b.faults.Calls() != 3 {
				t.Errorf("size %d, calls %d; want 1, 3", b.size(), b.faults.Calls())
			}
		})
	}
}

func TestFailNextDefaultsToTransient(t *testing.T) {
	for _, b := range backends(t) {
		b.faults.FailNext(1, nil)
		if err := b.call(context.Background(), 0); !errors.Is(err, simulate.ErrTransient) {
			t.Errorf("%s: err = %v, want ErrTransient", b.name, err)
		}
	}
}

func TestFailRate(t *testing.T) {
	for _, b := range backends(t) {
		ctx := context.Background()
		b.faults.SetFailRate(1)
		for i := range 5 {
			if err := b.call(ctx, i); !errors.Is(err, simulate.ErrTransient) {
				t.Errorf("%s: err = %v, want ErrTransient", b.name, err)
			}
		}
		if b.size() != 0 {
			t.Errorf("%s: failed calls changed state", b.name)
		}
		b.faults.SetFailRate(0)
		if err := b.call(ctx, 0); err != nil {
			t.Errorf("%s: after SetFailRate(0): %v", b.name, err)
		}
	}
}

func TestLatency(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.faults.SetLatency(30 * time.Millisecond)
			start := time.Now()
			if err := b.call(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < 30*time.Millisecond {
				t.Errorf("call took %v, want at least the 30ms latency", d)
			}

			b.faults.SetLatency(time.Hour)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			start = time.Now()
			err := b.call(ctx, 1)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), b.service) {
				t.Errorf("err = %v, want %q wrapping DeadlineExceeded", err, b.service)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("cancelled call took %v", d)
			}
			if b.size() != 1 {
				t.Errorf("cancelled call changed state: size %d, want 1", b.size())
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	for _, b := range backends(t) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.call(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want Canceled", b.name, err)
		}
		if b.size() != 0 {
			t.Errorf("%s: cancelled call changed state", b.name)
		}
	}
}

func TestBlock(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.faults.Block()
			done := make(chan error, 1)
			go func() { done <- b.call(context.Background(), 0) }()
			waitFor(t, func() bool { return b.faults.Calls() == 1 })
			select {
			case err := <-done:
				t.Fatalf("call returned while blocked: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
			if b.size() != 0 {
				t.Fatalf("blocked call changed state")
			}
			b.faults.Unblock()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if b.size() != 1 {
				t.Errorf("size %d after Unblock, want 1", b.size())
			}
		})
	}
}

func TestBlockCancel(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.faults.Block()
			defer b.faults.Unblock()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- b.call(ctx, 0) }()
			waitFor(t, func() bool { return b.faults.Calls() == 1 })
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want Canceled", err)
			}
			b.faults.Unblock()
			if b.size() != 0 {
				t.Errorf("cancelled call changed state")
			}
		})
	}
}

func TestLoseNext(t *testing.T) {
	for _, b := range backends(t) {
		b.faults.LoseNext(1)
		if err := b.call(context.Background(), 0); !errors.Is(err, simulate.ErrLostResponse) {
			t.Errorf("%s: err = %v, want ErrLostResponse", b.name, err)
		}
		if b.size() != 1 {
			t.Errorf("%s: lost call did not change state", b.name)
		}
	}
}

// A retry after a lost response meets the work it already did.
func TestLoseNextThenRetry(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	key := publicKeyPEM(t, "ed25519")
	id := map[string]string{"mac": "02:00:00:00:00:01"}
	m.LoseNext(1)
	if _, err := m.Preauthorize(ctx, id, key, false); !errors.Is(err, simulate.ErrLostResponse) {
		t.Fatalf("err = %v, want ErrLostResponse", err)
	}
	dev, err := m.Preauthorize(ctx, id, key, false)
	if !errors.Is(err, gatehouse.ErrBackendExists) || dev.ID != m.Devices()[0].ID {
		t.Errorf("retry: %v, %v; want the existing device and ErrBackendExists", dev, err)
	}
}

func TestFaultsConcurrent(t *testing.T) {
	for _, b := range backends(t) {
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				_ = b.call(ctx, i)
			})
			wg.Go(func() {
				switch i % 5 {
				case 0:
					b.faults.SetFailRate(0.5)
				case 1:
					b.faults.FailNext(1, nil)
				case 2:
					b.faults.SetLatency(time.Millisecond)
				case 3:
					b.faults.Block()
				case 4:
					b.faults.Unblock()
				}
				_ = b.faults.Calls()
			})
		}
		wg.Wait()
		b.faults.Unblock()
		if b.faults.Calls() != 40 {
			t.Errorf("%s: Calls() = %d, want 40", b.name, b.faults.Calls())
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
