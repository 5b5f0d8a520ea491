package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestBackoffFullJitter(t *testing.T) {
	b := backoff{min: 10 * time.Millisecond, max: 80 * time.Millisecond}
	ceilings := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, ceil := range ceilings {
		if d := b.next(0); d < 0 || d > ceil*time.Millisecond {
			t.Errorf("attempt %d: %v outside [0, %v]", i, d, ceil*time.Millisecond)
		}
	}
	if d := b.next(time.Second); d != time.Second {
		t.Errorf("Retry-After 1s gave %v", d)
	}
	if d := b.next(time.Hour); d != maxRetryAfter {
		t.Errorf("Retry-After 1h gave %v, want the cap", d)
	}
	b.attempt = 1000 // no overflow after a long outage
	if d := b.next(0); d < 0 || d > b.max {
		t.Errorf("late attempt gave %v", d)
	}
}

func TestRetrierStopsOnPermanentErrors(t *testing.T) {
	r := &retrier{backoff: backoff{min: time.Millisecond, max: time.Millisecond}, log: slog.New(slog.DiscardHandler)}
	calls := 0
	err := r.do(t.Context(), "x", func(context.Context) error {
		calls++
		if calls < 3 {
			return &ServerError{Status: http.StatusServiceUnavailable}
		}
		return &ServerError{Status: http.StatusBadRequest}
	})
	var se *ServerError
	if !errors.As(err, &se) || se.Status != 400 || calls != 3 {
		t.Fatalf("err %v after %d calls, want the 400 after 3", err, calls)
	}
	r.limit = 2
	calls = 0
	r.do(t.Context(), "x", func(context.Context) error { calls++; return &transportError{errors.New("down")} })
	if calls != 2 {
		t.Errorf("%d calls with limit 2", calls)
	}
}

// TestRetrierBacksOffAfreshAfterAHeldRequest cuts a request three times in
// a row: when each had run for a while (a long poll held by a server that
// then restarted) the backoff starts again from its minimum each time;
// when each failed at once (the server is down) it grows.
func TestRetrierBacksOffAfreshAfterAHeldRequest(t *testing.T) {
	for _, tc := range []struct {
		ran  time.Duration
		want []int // backoff attempts seen by each call
	}{
		{ran: heldFor, want: []int{0, 1, 1, 1}},
		{ran: time.Millisecond, want: []int{0, 1, 2, 3}},
	} {
		now := time.Unix(0, 0)
		r := &retrier{backoff: backoff{min: time.Microsecond, max: time.Microsecond}, log: slog.New(slog.DiscardHandler),
			now: func() time.Time { return now }}
		var seen []int
		err := r.do(t.Context(), "wait", func(context.Context) error {
			seen = append(seen, r.attempt)
			if len(seen) == len(tc.want) {
				return nil
			}
			now = now.Add(tc.ran)
			return &transportError{errors.New("connection reset")}
		})
		if err != nil || !slices.Equal(seen, tc.want) {
			t.Errorf("requests failing after %v: attempts %v, err %v; want %v", tc.ran, seen, err, tc.want)
		}
	}
}
