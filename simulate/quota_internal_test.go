package simulate

import (
	"testing"
	"time"
)

// TestQuotaWindowSlides: the window trails the clock, so room comes back
// as the oldest operations age out, and Take says when that is.
func TestQuotaWindowSlides(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	q := NewQuota(3, time.Minute)
	q.now = func() time.Time { return now }
	for i := range 3 {
		if w := q.Take(); w != 0 {
			t.Fatalf("operation %d refused (wait %v) within the quota", i+1, w)
		}
		now = now.Add(10 * time.Second)
	}
	// At +30 s the window holds operations at 0, 10 and 20 s.
	if w := q.Take(); w != 30*time.Second {
		t.Fatalf("past the quota: wait %v, want 30s (until the first ages out)", w)
	}
	now = now.Add(30 * time.Second) // +60 s: the first has aged out
	if w := q.Take(); w != 0 {
		t.Fatalf("after the oldest aged out: refused, wait %v", w)
	}
	if w := q.Take(); w <= 0 {
		t.Fatal("a fourth operation within the window went through")
	}
	if st := q.Stats(); st.Requests != 6 || st.Throttled != 2 || st.MaxPerWindow != 5 {
		t.Errorf("stats = %+v, want 6 requests, 2 throttled, at most 5 in one window", st)
	}
}
