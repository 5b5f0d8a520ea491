package retryafter_test

import (
	"testing"
	"time"

	"gatehouse/retryafter"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 7 ":                           7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"99999999999999999":             retryafter.Max,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
		"Sun, 04 Jan 2026 03:04:05 GMT": retryafter.Max,
	} {
		if got := retryafter.Parse(v, now); got != want {
			t.Errorf("Parse(%q) = %v, want %v", v, got, want)
		}
	}
}
