package simulate_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"gatehouse/simulate"
)

// TestDPSServerQuotaThrottles: past the operations quota the DPS simulator
// answers 429 with errorCode 429001 and a Retry-After, as DPS throttles
// its service API ("Operations 1,000/min/service", reference/external-apis.md
// §2.6), and counts what it saw.
func TestDPSServerQuotaThrottles(t *testing.T) {
	t.Parallel()
	q := simulate.NewQuota(5, time.Minute)
	s := newDPSServer(t, simulate.DPSServerOptions{Quota: q})
	auth := token(t, s.ConnectionString)
	for i := range 5 {
		if r := send(t, s.URL, "GET", "/enrollments/gw-1?api-version=2021-10-01", auth, nil); r.status != http.StatusNotFound {
			t.Fatalf("request %d within the quota: status %d, want 404", i+1, r.status)
		}
	}
	r := send(t, s.URL, "GET", "/enrollments/gw-1?api-version=2021-10-01", auth, nil)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("request past the quota: status %d, want 429", r.status)
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After = %q, want 1-60 seconds", r.header.Get("Retry-After"))
	}
	var body dpsErrorBody
	r.json(t, &body)
	if body.ErrorCode != 429001 || body.TrackingID == "" {
		t.Errorf("throttled body = %+v, want errorCode 429001 with a tracking id", body)
	}
	// An unauthenticated request is refused before it counts.
	if r := send(t, s.URL, "GET", "/enrollments/gw-1?api-version=2021-10-01", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: status %d, want 401", r.status)
	}
	if st := q.Stats(); st != (simulate.QuotaStats{Requests: 6, Throttled: 1, MaxPerWindow: 6}) {
		t.Errorf("stats = %+v, want 6 requests, 1 throttled, 6 in the window", st)
	}
}
