package server

import (
	"testing"
	"time"
)

func TestParseWithin(t *testing.T) {
	for in, want := range map[string]time.Duration{"14d": 14 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "3650d": maxWithin} {
		got, err := ParseWithin(in)
		if err != nil || got != want {
			t.Errorf("ParseWithin(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "-1d", "soon", "14", "3651d", "1.5d"} {
		if _, err := ParseWithin(in); err == nil {
			t.Errorf("ParseWithin(%q) accepted", in)
		}
	}
	if FormatWithin(14*24*time.Hour) != "14d" || FormatWithin(36*time.Hour) != "36h0m0s" {
		t.Errorf("FormatWithin: %s, %s", FormatWithin(14*24*time.Hour), FormatWithin(36*time.Hour))
	}
}
