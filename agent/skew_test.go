package agent

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/protocol"
)

// TestRunClockOff: an agent whose clock is 10 minutes off, either way,
// is refused by the real verifier; it makes one enrollment, no retry, and
// exits ExitClock with an error and a log line that say so and give both
// clocks.
func TestRunClockOff(t *testing.T) {
	for _, tt := range []struct {
		off  time.Duration
		says string
	}{
		{10 * time.Minute, "ahead of the server's"},
		{-10 * time.Minute, "behind the server's"},
	} {
		t.Run(tt.off.String(), func(t *testing.T) {
			f := newFakeServer(t)
			keyPath, _ := writeKey(t, "ed25519")
			cfg, logs := testConfig(t, f, keyPath)
			cfg.Now = func() time.Time { return time.Now().Add(tt.off) }
			_, err := Run(t.Context(), cfg)
			wantExit(t, err, ExitClock, tt.says, "server 20", "set the clock")
			var ce *ClockError
			if !errors.As(err, &ce) || (ce.Skew()-tt.off).Abs() > 2*time.Second {
				t.Errorf("error %v: want a *ClockError of %s", err, tt.off)
			}
			if n := f.errorCount(); n != 1 {
				t.Errorf("%d refused requests, want 1: a clock refusal is not retried", n)
			}
			for _, s := range []string{"clock is off", "server_time=20", "agent_time=20", "skew="} {
				if !strings.Contains(logs.String(), s) {
					t.Errorf("log does not hold %q", s)
				}
			}
		})
	}
}

// TestRunClockJumps: a clock that jumps 10 minutes ahead while the agent
// waits (NTP stepping the wrong way, an RTC reset) ends the wait the same
// way, after one refused wait, not an endless quiet retry.
func TestRunClockJumps(t *testing.T) {
	f := newFakeServer(t)
	f.hold = 50 * time.Millisecond
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	var off atomic.Int64
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
	ch := runAsync(t.Context(), cfg)
	f.waitForCalls(t, protocol.PathWait, 1)
	off.Store(int64(10 * time.Minute))
	r := await(t, ch)
	wantExit(t, r.err, ExitClock, "ahead of the server's", "wait refused")
	if n := f.errorCount(); n != 1 {
		t.Errorf("%d refused requests, want 1: a clock refusal is not retried", n)
	}
}

func (f *fakeServer) errorCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errors
}

// TestClockErrorNeedsEvidence: only a 401 whose Date header is far from
// the agent's clock reads as a clock problem; a refused signature with
// clocks that agree, or no Date at all (a proxy that drops it), stays a
// plain refusal.
func TestClockErrorNeedsEvidence(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name string
		se   *ServerError
		want bool
	}{
		{"off", &ServerError{Status: 401, AgentTime: now, ServerTime: now.Add(-10 * time.Minute)}, true},
		{"just past the limit", &ServerError{Status: 401, AgentTime: now, ServerTime: now.Add(protocol.MaxSkew)}, true},
		{"clocks agree", &ServerError{Status: 401, AgentTime: now, ServerTime: now.Add(time.Second)}, false},
		{"no Date", &ServerError{Status: 401, AgentTime: now}, false},
		{"not a 401", &ServerError{Status: 403, AgentTime: now, ServerTime: now.Add(time.Hour)}, false},
	} {
		if got := clockError(tt.se) != nil; got != tt.want {
			t.Errorf("%s: clock error %v, want %v", tt.name, got, tt.want)
		}
	}
	h := http.Header{}
	h.Set("Date", "not a date")
	if !serverTime(h).IsZero() {
		t.Error("a garbled Date header read as a time")
	}
}
