package server

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
)

// The device API's default limit per source address. A real agent enrolls
// once, then long-polls wait, which the server holds about 30 s, and acks
// once: about two requests a minute, a few of them back to back at start and
// after a restart (enroll, first wait). A burst of 20 lets an agent restart
// in a loop, or 20 gateways behind one NAT boot together, without a single
// refusal; 1 request a second sustains some 30 long-polling gateways behind
// one address. A flood from one address, though, gets 20 requests through
// and then one a second: 3,600 an hour instead of a million.
const (
	DefaultDeviceRate  rate.Limit = 1
	DefaultDeviceBurst            = 20
)

// Login attempts per source address: ten at once, then one every six
// seconds. A person who mistypes a password a few times never meets it; a
// guesser gets 600 tries an hour instead of as many as argon2id allows.
const (
	DefaultLoginRate  rate.Limit = 1.0 / 6
	DefaultLoginBurst            = 10
)

// maxSources bounds how many addresses the limiter tracks at once. An entry
// costs about 200 bytes, so this is some 20 MB at worst. Past it, sources
// not yet tracked share one bucket: under a flood from more addresses than
// this, new ones are slowed together rather than given memory each.
const maxSources = 100_000

// sourceLimiter is a token bucket per source (see sourceKey).
//
// Memory stays bounded in two ways. A bucket untouched for idle (burst/rate:
// the time to refill completely) is full again, exactly like a new one, so
// dropping it changes no answer; a sweep drops those at most every
// sweepEvery (some 10 ms for a full map). And whatever the sweep cannot drop is capped at maxSources, the
// rest sharing the overflow bucket.
type sourceLimiter struct {
	rate       rate.Limit
	burst      int
	idle       time.Duration
	sweepEvery time.Duration
	max        int
	now        func() time.Time
	warn       func(msg string, args ...any)

	mu        sync.Mutex
	buckets   map[string]*bucket
	overflow  *rate.Limiter
	lastSweep time.Time
	full      bool // the overflow is in use; warned once
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // last request, refused ones included
}

// newSourceLimiter returns nil for an infinite rate: no limit at all.
func newSourceLimiter(r rate.Limit, burst int, now func() time.Time, warn func(string, ...any)) *sourceLimiter {
	if r == rate.Inf {
		return nil
	}
	idle := time.Minute
	if r > 0 {
		idle = max(time.Duration(float64(burst)/float64(r)*float64(time.Second)), time.Second)
	}
	return &sourceLimiter{
		rate: r, burst: burst, idle: idle, sweepEvery: min(idle, time.Minute), max: maxSources,
		now: now, warn: warn, buckets: map[string]*bucket{}, overflow: rate.NewLimiter(r, burst),
	}
}

// allow takes a token from source's bucket, or says how long until one is
// there.
func (l *sourceLimiter) allow(source string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	res := l.bucketOf(source, now).ReserveN(now, 1)
	if !res.OK() {
		return false, l.idle // a burst below 1 never allows anything
	}
	if d := res.DelayFrom(now); d > 0 {
		// Refused requests take nothing: give the token back.
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *sourceLimiter) bucketOf(source string, now time.Time) *rate.Limiter {
	if b := l.buckets[source]; b != nil {
		b.last = now
		return b.lim
	}
	if len(l.buckets) >= l.max {
		if !l.full {
			l.full = true
			l.warn("device rate limit: too many source addresses at once; new ones share one bucket until old ones go quiet",
				"tracked", len(l.buckets))
		}
		return l.overflow
	}
	b := &bucket{lim: rate.NewLimiter(l.rate, l.burst), last: now}
	l.buckets[source] = b
	return b.lim
}

// sweep drops buckets that have refilled completely.
func (l *sourceLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.sweepEvery {
		return
	}
	l.lastSweep = now
	for src, b := range l.buckets {
		if now.Sub(b.last) >= l.idle {
			delete(l.buckets, src)
		}
	}
	if len(l.buckets) < l.max {
		l.full = false
	}
}

// tracked is how many sources hold a bucket, for tests.
func (l *sourceLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// check refuses r with a rate_limited error when its source is over the
// limit. It needs only the peer address: no body, no signature.
func (l *sourceLimiter) check(r *http.Request, what string) error {
	if l == nil {
		return nil
	}
	ok, wait := l.allow(sourceKey(r.RemoteAddr))
	if ok {
		return nil
	}
	return gatehouse.Errorf(gatehouse.ERATELIMITED,
		"too many %s from this address (limit %s a second, bursts of %d); retry after %s s",
		what, formatRate(l.rate), l.burst, retryAfterSeconds(wait)).WithRetryAfter(wait)
}

func formatRate(r rate.Limit) string {
	return strconv.FormatFloat(float64(r), 'g', 4, 64)
}

// sourceKey is what the limit counts by: the IPv4 address, or the IPv6 /64,
// the smallest block a site is normally given, so one host cannot step
// through its 2^64 addresses to dodge the limit. Behind a proxy every
// request comes from the proxy's address; see remoteAddr.
func sourceKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote // not ip:port (a test transport): one bucket per string
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// checkDeviceLimit refuses settings that would refuse every device request.
func checkDeviceLimit(r rate.Limit, burst int) error {
	if r == rate.Inf {
		return nil
	}
	if r <= 0 || burst < 1 {
		return fmt.Errorf("server: device rate limit %s/s with burst %d would refuse every request; use rate.Inf for no limit", formatRate(r), burst)
	}
	return nil
}

// deviceSlots bounds the device requests using the database at once. SQLite
// has one connection, which database/sql hands to a waiter picked at random:
// with a flood's requests queued by the dozen, an operator's listing waited
// behind most of them; with a few slots it waits behind a few (in
// BenchmarkFlood on a loaded 2-core machine, list p95 390 ms without slots,
// 120 ms with four, and slower with eight). The body is read before a slot
// is taken, so a slow sender holds none.
const deviceSlots = 4

// deviceSlot takes a slot, waiting while all are taken; release gives it
// back and may be called more than once.
func (s *Server) deviceSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.devSlots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-s.devSlots }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// warn logs to the server's logger, which may be set after Handler ran.
func (s *Server) warn(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Warn(msg, args...)
	}
}
