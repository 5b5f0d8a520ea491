package rest

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limiter paces calls: Wait returns once a call may go, or ctx's error.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Quota is a service's documented call budget, paced as PerWindow does. On
// its own it paces this process; Share hands the pacing to a limiter all
// replicas use, so N replicas together stay within one budget.
type Quota struct {
	// Name tells the budget apart from others: the service and the account
	// (a DPS scope, a Mender server) it is counted against.
	Name   string
	N      int
	Window time.Duration

	local  *rate.Limiter
	shared atomic.Pointer[Limiter]
}

// NewQuota paces at most n calls in any window, per PerWindow.
func NewQuota(name string, n int, window time.Duration) *Quota {
	return &Quota{Name: name, N: n, Window: window, local: PerWindow(n, window)}
}

// Burst and Rate are the token bucket PerWindow makes of the quota, for a
// shared limiter to apply the same shape.
func (q *Quota) Burst() int { return q.local.Burst() }

// Rate is the bucket's refill, in calls per second.
func (q *Quota) Rate() float64 { return float64(q.local.Limit()) }

// Share makes every later Wait use l instead of this process's own bucket.
func (q *Quota) Share(l Limiter) { q.shared.Store(&l) }

// Shared reports whether the quota is paced across replicas.
func (q *Quota) Shared() bool { return q.shared.Load() != nil }

// Wait implements Limiter.
func (q *Quota) Wait(ctx context.Context) error {
	if l := q.shared.Load(); l != nil {
		return (*l).Wait(ctx)
	}
	return q.local.Wait(ctx)
}
