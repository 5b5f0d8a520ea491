package agent

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// maxRetryAfter caps a server's Retry-After so a bogus value cannot park the
// gateway for hours.
const maxRetryAfter = 10 * time.Minute

// onceAttempts is how often --once tries a request before giving up: enough
// to ride out a server restart, short enough for a script.
const onceAttempts = 3

// backoff is exponential backoff with full jitter: the n-th delay is uniform
// in [0, min(max, min*2^n)), so a fleet that lost its server together does
// not come back in lockstep.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func (b *backoff) next(retryAfter time.Duration) time.Duration {
	ceil := b.min << min(b.attempt, 30)
	if ceil <= 0 || ceil > b.max {
		ceil = b.max
	}
	b.attempt++
	d := time.Duration(rand.Int64N(int64(ceil) + 1))
	return max(d, min(retryAfter, maxRetryAfter))
}

func (b *backoff) reset() { b.attempt = 0 }

// heldFor: a request that failed after running this long had reached a
// live server (a long poll it held, cut by a restart, say), so the outage
// that follows is a new one and the backoff starts again from its minimum.
// Without it a wait cut by a few restarts in a row would back off as if
// the server had been down all along, and the gateway would pick up its
// credentials up to BackoffMax after the server came back.
const heldFor = 2 * time.Second

// retrier repeats a request while it fails transiently.
type retrier struct {
	backoff
	limit int // attempts per call; 0 means until ctx ends
	log   *slog.Logger
	now   func() time.Time // default time.Now
}

func (r *retrier) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// do calls fn until it succeeds, fails permanently, the attempt limit is
// reached, or ctx ends. It returns fn's last error.
func (r *retrier) do(ctx context.Context, what string, fn func(context.Context) error) error {
	defer r.reset()
	for attempt := 1; ; attempt++ {
		start := r.clock()
		err := fn(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		transient, retryAfter := retryHint(err)
		if !transient || (r.limit > 0 && attempt >= r.limit) {
			return err
		}
		if r.clock().Sub(start) >= heldFor {
			r.reset()
		}
		d := r.next(retryAfter)
		r.log.Warn(what+" failed, retrying", "in", d.Round(time.Millisecond), "attempt", attempt, "err", err)
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
