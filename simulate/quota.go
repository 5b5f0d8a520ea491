package simulate

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Quota throttles a simulated service the way Azure's per-minute quotas
// do: at most Limit operations in any Window (a minute in production), and
// past it 429 with Retry-After until the oldest operation of the window
// ages out. DPS documents "Operations 1,000/min/service" for its service
// API and answers throttled calls with 429 ("Operations are being throttled
// by the service"); see reference/external-apis.md §2.6. Whether DPS sends
// Retry-After there is unconfirmed; the simulator does, since a client
// must honour it where present and back off where not.
//
// Tests shrink Window (and Limit with it) so a quota binds within seconds.
// Quota is safe for concurrent use; its zero value is not usable.
type Quota struct {
	Limit  int
	Window time.Duration

	mu        sync.Mutex
	now       func() time.Time
	accepted  []time.Time // the accepted operations of the trailing window, oldest first
	arrivals  []time.Time // every request of the trailing window, throttled ones too
	maxArrive int
	total     int
	throttled int
}

// NewQuota returns a quota of limit operations per window.
func NewQuota(limit int, window time.Duration) *Quota {
	if limit <= 0 || window <= 0 {
		panic("simulate: a quota needs a positive limit and window")
	}
	return &Quota{Limit: limit, Window: window, now: time.Now}
}

// Take counts one operation. It returns 0 when the operation may go ahead,
// or how long until the window has room again.
func (q *Quota) Take() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	cut := now.Add(-q.Window)
	q.accepted = dropBefore(q.accepted, cut)
	q.arrivals = append(dropBefore(q.arrivals, cut), now)
	q.maxArrive = max(q.maxArrive, len(q.arrivals))
	q.total++
	if len(q.accepted) >= q.Limit {
		q.throttled++
		return q.accepted[0].Add(q.Window).Sub(now)
	}
	q.accepted = append(q.accepted, now)
	return 0
}

// dropBefore removes the times before cut from the front of ts.
func dropBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == 0 {
		return ts
	}
	return append(ts[:0], ts[i:]...)
}

// QuotaStats is what a quota has seen.
type QuotaStats struct {
	// Requests is every operation asked for, throttled ones included.
	Requests int
	// Throttled is how many were answered 429.
	Throttled int
	// MaxPerWindow is the most requests that arrived within one window,
	// throttled ones included: a client that keeps the quota keeps this at
	// or below Limit.
	MaxPerWindow int
}

// Stats returns what the quota has seen so far.
func (q *Quota) Stats() QuotaStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return QuotaStats{Requests: q.total, Throttled: q.throttled, MaxPerWindow: q.maxArrive}
}

// Wrap throttles every request to next, answering over-quota ones as DPS
// does: 429 with errorCode 429001 and a Retry-After in whole seconds.
func (q *Quota) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := q.Take()
		if wait <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		secs := max(int64((wait+time.Second-1)/time.Second), 1)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		azWriteError(w, azErr("dps", http.StatusTooManyRequests, 429001, nil,
			"Operations are being throttled by the service: more than %d operations in %v", q.Limit, q.Window))
	})
}

// wrapIfSet is Wrap for an optional quota.
func (q *Quota) wrapIfSet(next http.Handler) http.Handler {
	if q == nil {
		return next
	}
	return q.Wrap(next)
}
