package azure

import (
	"context"
	"errors"
	"sync"

	"gatehouse/rest"
)

// ErrYielded is what a background call gets instead of a place in the
// quota while calls someone waits on (approvals' name checks, enrollment
// writes) are queued for it. Nothing was sent; the caller comes back later.
var ErrYielded = errors.New("the service's quota is in use by calls that cannot wait; nothing was sent")

type laneKey struct{}

// background marks calls that may be put off for others: the follow-up's
// registration-state reads, which thousands of waiting gateways repeat and
// which only tell sooner what a later read tells too.
func background(ctx context.Context) context.Context {
	return context.WithValue(ctx, laneKey{}, true)
}

func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(laneKey{}).(bool)
	return b
}

// lanes share one quota between calls someone waits on and background
// calls. A background call goes only when no other call is waiting for the
// quota, and one at a time, so an approval finds at most one background
// call ahead of it; otherwise it gets ErrYielded at once rather than a
// token an approval needs. A shared quota (Quota.Share) is paced across
// replicas as before; the lanes order this process's calls.
type lanes struct {
	next rest.Limiter

	mu      sync.Mutex
	waiting int  // foreground calls waiting in next
	bgBusy  bool // a background call is waiting in next
}

// Wait implements rest.Limiter.
func (l *lanes) Wait(ctx context.Context) error {
	if isBackground(ctx) {
		return l.waitBackground(ctx)
	}
	l.mu.Lock()
	l.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
	}()
	return l.next.Wait(ctx)
}

func (l *lanes) waitBackground(ctx context.Context) error {
	l.mu.Lock()
	if l.waiting > 0 || l.bgBusy {
		l.mu.Unlock()
		return ErrYielded
	}
	l.bgBusy = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.bgBusy = false
		l.mu.Unlock()
	}()
	return l.next.Wait(ctx)
}
