package azure

import (
	"context"
	"errors"
	"testing"
	"time"
)

// gate is a limiter that holds each Wait until the test lets it through,
// telling the test when a call has arrived.
type gate struct {
	arrived chan struct{}
	pass    chan struct{}
}

func newGate() *gate { return &gate{arrived: make(chan struct{}, 8), pass: make(chan struct{})} }

func (g *gate) Wait(ctx context.Context) error {
	g.arrived <- struct{}{}
	select {
	case <-g.pass:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func within(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

// TestLanesBackgroundYields: while a call someone waits on is queued for
// the quota, a background call is told to come back later at once instead
// of queueing ahead of or beside it; with the quota idle it goes, one
// background call at a time.
func TestLanesBackgroundYields(t *testing.T) {
	ctx := context.Background()
	g := newGate()
	l := &lanes{next: g, rate: 100, now: time.Now}
	fg := make(chan error, 1)
	go func() { fg <- l.Wait(ctx) }()
	within(t, "the foreground call reaching the quota", g.arrived)
	if err := l.Wait(background(ctx)); !errors.Is(err, ErrYielded) {
		t.Fatalf("background call while an approval waits: %v, want ErrYielded", err)
	}
	g.pass <- struct{}{}
	if err := <-fg; err != nil {
		t.Fatal(err)
	}
	bg := make(chan error, 1)
	go func() { bg <- l.Wait(background(ctx)) }()
	within(t, "the background call reaching the idle quota", g.arrived)
	if err := l.Wait(background(ctx)); !errors.Is(err, ErrYielded) {
		t.Fatalf("second background call at once: %v, want ErrYielded", err)
	}
	// A foreground call is never refused, even behind a background one.
	fg2 := make(chan error, 1)
	go func() { fg2 <- l.Wait(ctx) }()
	within(t, "the foreground call queueing behind the background one", g.arrived)
	g.pass <- struct{}{}
	g.pass <- struct{}{}
	if err, err2 := <-bg, <-fg2; err != nil || err2 != nil {
		t.Fatalf("background %v, foreground %v", err, err2)
	}
}

// open is a limiter that never waits.
type open struct{}

func (open) Wait(context.Context) error { return nil }

// TestLanesYieldWhileApprovalsUseTheQuota: a moment without a waiting
// approval is not room to spare. While calls someone waits on went
// through at more than busyShare of the quota's rate within busySpan,
// background calls yield; once they slow down, background calls go.
func TestLanesYieldWhileApprovalsUseTheQuota(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	l := &lanes{next: open{}, rate: 10, now: func() time.Time { return now }}
	// 10/s over a 2 s span: 16 calls are 80 %.
	for range 16 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(100 * time.Millisecond)
	}
	if err := l.Wait(background(ctx)); !errors.Is(err, ErrYielded) {
		t.Fatalf("background call while approvals use the quota: %v, want ErrYielded", err)
	}
	now = now.Add(busySpan) // the approvals' calls age out
	if err := l.Wait(background(ctx)); err != nil {
		t.Fatalf("background call with the quota idle: %v", err)
	}
	for range 5 { // a trickle leaves room
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Wait(background(ctx)); err != nil {
		t.Fatalf("background call beside a trickle of approvals: %v", err)
	}
}
