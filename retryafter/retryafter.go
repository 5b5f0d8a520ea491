// Package retryafter reads the HTTP Retry-After header, which gatehouse's
// backend clients, its agent and its webhook sender all honour.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Max caps what a server can ask for; it also keeps the seconds-to-Duration
// conversion far from overflow. Callers may cap lower.
const Max = 24 * time.Hour

// Parse reads delay-seconds or an HTTP date relative to now. Empty, junk,
// negative and past values mean no hint (0).
func Parse(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, int64(Max/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), Max)
	}
	return 0
}
