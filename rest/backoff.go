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
func PerMinute(n int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(n)/60), max(1, n/60))
}
