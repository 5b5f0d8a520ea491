package rest

import (
	"context"
	"math/rand/v2"
	"time"

	"golang.org/x/time/rate"
)

type backoff struct{ min, max time.Duration }

// next is exponential with full jitter, but never shorter than what the
// service asked for in Retry-After.
func (b backoff) next(attempt int, retryAfter time.Duration) time.Duration {
	d := b.max
	if attempt < 30 {
		d = min(b.min<<attempt, b.max)
	}
	d = rand.N(d) + 1
	if retryAfter > d {
		return min(retryAfter, 5*time.Minute)
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PerMinute allows n calls a minute with a burst of about a second's worth,
// the shape the Azure quotas are documented in.
func PerMinute(n int) *rate.Limiter { return PerWindow(n, time.Minute) }

// PerWindow allows at most n calls in any window of the given length, with
// a burst of a sixtieth of them. The refill rate leaves room for the burst
// (refilling at n per window would let a burst plus n calls into one
// window, past a quota counted per window) and keeps a fiftieth of it
// spare: calls the network delays arrive bunched, and the service counts
// arrivals, not our sends. (A twentieth left DPS's 1,000/min at 93 %, so
// 1,000 approvals took 128 s instead of the 126 s their 2,000 calls need at
// 95 %.)
func PerWindow(n int, window time.Duration) *rate.Limiter {
	burst := max(1, n/60)
	refill := max(float64(n-burst)*0.98, 1)
	return rate.NewLimiter(rate.Limit(refill/window.Seconds()), burst)
}
