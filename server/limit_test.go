package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestLimiter(r rate.Limit, burst int) (*sourceLimiter, *fakeClock, *[]string) {
	clk := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var warnings []string
	l := newSourceLimiter(r, burst, clk.Now, func(msg string, _ ...any) { warnings = append(warnings, msg) })
	return l, clk, &warnings
}

// take makes n requests from source and returns how many were allowed and
// the wait the last refusal asked for.
func take(l *sourceLimiter, source string, n int) (allowed int, wait time.Duration) {
	for range n {
		ok, d := l.allow(source)
		if ok {
			allowed++
		} else {
			wait = d
		}
	}
	return allowed, wait
}

func TestLimiterBurstThenRate(t *testing.T) {
	l, clk, _ := newTestLimiter(1, 20)
	if got, wait := take(l, "192.0.2.1", 25); got != 20 || wait != time.Second {
		t.Fatalf("25 requests at once: %d allowed, wait %v; want the burst of 20 and a wait of 1s", got, wait)
	}
	// Refused requests take nothing: half a second on, still a half to go.
	clk.Add(500 * time.Millisecond)
	if got, wait := take(l, "192.0.2.1", 1); got != 0 || wait != 500*time.Millisecond {
		t.Fatalf("after 0.5s: %d allowed, wait %v; want none and 0.5s", got, wait)
	}
	clk.Add(500 * time.Millisecond)
	if got, _ := take(l, "192.0.2.1", 2); got != 1 {
		t.Fatalf("after 1s: %d allowed, want the one token refilled", got)
	}
	clk.Add(5 * time.Second)
	if got, _ := take(l, "192.0.2.1", 10); got != 5 {
		t.Fatalf("after 5s more: %d allowed, want 5", got)
	}
}

func TestLimiterSourcesIndependent(t *testing.T) {
	l, _, _ := newTestLimiter(1, 3)
	if got, _ := take(l, "192.0.2.1", 10); got != 3 {
		t.Fatalf("flooding source: %d allowed, want 3", got)
	}
	for _, src := range []string{"192.0.2.2", "2001:db8:1:2::/64", "2001:db8:1:3::/64"} {
		if got, _ := take(l, src, 3); got != 3 {
			t.Errorf("source %s next to a flood: %d of 3 allowed", src, got)
		}
	}
}

func TestSourceKey(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:4000":                  "192.0.2.7",
		"[::ffff:192.0.2.7]:4000":         "192.0.2.7", // IPv4 over an IPv6 socket
		"[2001:db8:1:2:aaaa::1]:4000":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:ffff::9]:443": "2001:db8:1:2::/64", // same /64: same bucket
		"[2001:db8:1:3::1]:4000":          "2001:db8:1:3::/64",
		"[fe80::1%eth0]:4000":             "fe80::/64",
		"pipe":                            "pipe",
	} {
		if got := sourceKey(remote); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", remote, got, want)
		}
	}
}

func TestLimiterPrunesRefilledBuckets(t *testing.T) {
	l, clk, _ := newTestLimiter(1, 20) // a bucket refills in 20 s
	for i := range 1000 {
		take(l, fmt.Sprintf("198.51.100.%d:%d", i%250, i), 1) // 1000 distinct strings
	}
	if n := l.tracked(); n != 1000 {
		t.Fatalf("tracked %d sources, want 1000", n)
	}
	take(l, "192.0.2.1", 25) // drained, and kept busy below
	clk.Add(10 * time.Second)
	take(l, "192.0.2.1", 1)
	clk.Add(10 * time.Second)
	take(l, "192.0.2.2", 1) // the sweep runs on any request
	if n := l.tracked(); n != 2 {
		t.Fatalf("after 20 s: %d sources tracked, want only the 2 used within the refill time", n)
	}
	// The busy source kept its bucket, one short of full (20 s of refill,
	// one taken at 10 s), where a new bucket would have allowed 20.
	if got, _ := take(l, "192.0.2.1", 20); got != 19 {
		t.Fatalf("busy source after the sweep: %d allowed, want 19", got)
	}
}

func TestLimiterBoundsSources(t *testing.T) {
	l, clk, warnings := newTestLimiter(1, 2)
	l.max = 100
	for i := range 100 {
		take(l, fmt.Sprintf("10.0.%d.%d", i/256, i%256), 1)
	}
	// Beyond the bound, new sources share one bucket of the same size; the
	// tracked ones keep their own.
	if got, _ := take(l, "10.9.0.1", 1); got != 1 {
		t.Fatal("first overflowing source refused")
	}
	if got, _ := take(l, "10.9.0.2", 1); got != 1 {
		t.Fatal("second overflowing source refused")
	}
	if got, _ := take(l, "10.9.0.3", 1); got != 0 {
		t.Fatal("the shared bucket allowed more than its burst")
	}
	if got, _ := take(l, "10.0.0.1", 1); got != 1 {
		t.Fatal("a tracked source lost its own bucket")
	}
	if n := l.tracked(); n != 100 {
		t.Fatalf("tracked %d sources, want the bound of 100", n)
	}
	if len(*warnings) != 1 {
		t.Fatalf("warnings = %q, want one", *warnings)
	}
	// Once the old ones go quiet, new sources get buckets of their own again.
	clk.Add(time.Minute)
	if got, _ := take(l, "10.9.0.3", 2); got != 2 {
		t.Fatalf("after the sweep: %d of 2 allowed", got)
	}
	if n := l.tracked(); n != 1 {
		t.Fatalf("tracked %d after the sweep, want 1", n)
	}
}

func TestLimiterOff(t *testing.T) {
	if l := newSourceLimiter(rate.Inf, 0, time.Now, nil); l != nil {
		t.Fatal("an infinite rate built a limiter")
	}
	var l *sourceLimiter
	if err := l.check(httptest.NewRequest("POST", "/device/v1/enroll", nil), "device requests"); err != nil {
		t.Fatalf("no limiter refused: %v", err)
	}
	for _, tt := range []struct {
		r     rate.Limit
		burst int
		ok    bool
	}{{rate.Inf, 0, true}, {1, 1, true}, {0, 20, false}, {-1, 20, false}, {1, 0, false}} {
		if err := checkDeviceLimit(tt.r, tt.burst); (err == nil) != tt.ok {
			t.Errorf("checkDeviceLimit(%v, %d) = %v", tt.r, tt.burst, err)
		}
	}
}

func TestLimiterError(t *testing.T) {
	l, clk, _ := newTestLimiter(0.25, 1) // one request per 4 s
	r := httptest.NewRequest("POST", "/device/v1/wait", nil)
	r.RemoteAddr = "192.0.2.1:5000"
	if err := l.check(r, "device requests"); err != nil {
		t.Fatal(err)
	}
	clk.Add(500 * time.Millisecond)
	err := l.check(r, "device requests")
	if gatehouse.ErrorCode(err) != gatehouse.ERATELIMITED || gatehouse.ErrorRetryAfter(err) != 3500*time.Millisecond {
		t.Fatalf("over the limit: %v (retry after %v); want rate_limited after 3.5s", err, gatehouse.ErrorRetryAfter(err))
	}
	rec := httptest.NewRecorder()
	(&Server{}).writeError(rec, r, err)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "4" {
		t.Fatalf("answer %d, Retry-After %q; want 429 and 4 (whole seconds, rounded up)", rec.Code, rec.Header().Get("Retry-After"))
	}
	if body := rec.Body.String(); !strings.Contains(body, `"code":"rate_limited"`) || !strings.Contains(body, "retry after 4 s") {
		t.Fatalf("body = %s", body)
	}
}
