package azure

import (
	"context"
	"errors"
	"sync"
	"time"

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
// calls. A background call goes only when the quota has room the others
// leave: none of them is waiting for it, they used less than busyShare of
// its rate over the last busySpan, and no other background call is
// waiting, so an approval finds at most one background call ahead of it.
// Otherwise it gets ErrYielded at once rather than a token an approval
// would have taken a moment later. A shared quota (Quota.Share) is paced
// across replicas as before; the lanes order this process's calls.
type lanes struct {
	next rest.Limiter
	rate float64 // the quota's calls per second
	now  func() time.Time

	mu      sync.Mutex
	waiting int         // foreground calls waiting in next
	recent  []time.Time // foreground calls let through within busySpan
	bgBusy  bool        // a background call is waiting in next
}

// busySpan and busyShare say when calls someone waits on are using the
// quota: more than busyShare of its rate within the last busySpan.
const (
	busySpan  = 2 * time.Second
	busyShare = 0.8
)

func newLanes(q *rest.Quota) *lanes {
	return &lanes{next: q, rate: q.Rate(), now: time.Now}
}

// Wait implements rest.Limiter.
func (l *lanes) Wait(ctx context.Context) error {
	if isBackground(ctx) {
		return l.waitBackground(ctx)
	}
	l.mu.Lock()
	l.waiting++
	l.mu.Unlock()
	err := l.next.Wait(ctx)
	l.mu.Lock()
	l.waiting--
	if err == nil {
		l.recent = append(l.trim(), l.now())
	}
	l.mu.Unlock()
	return err
}

// trim drops the foreground calls older than busySpan; l.mu is held.
func (l *lanes) trim() []time.Time {
	cut := l.now().Add(-busySpan)
	i := 0
	for i < len(l.recent) && l.recent[i].Before(cut) {
		i++
	}
	return append(l.recent[:0], l.recent[i:]...)
}

// busy says whether calls someone waits on are using the quota; l.mu is held.
func (l *lanes) busy() bool {
	l.recent = l.trim()
	return l.waiting > 0 || float64(len(l.recent)) >= busyShare*l.rate*busySpan.Seconds()
}

func (l *lanes) waitBackground(ctx context.Context) error {
	l.mu.Lock()
	if l.bgBusy || l.busy() {
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
