package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/protocol"
)

// TestDatabaseUnwritable: once SQLite cannot grow its file (max_page_count
// at the pages it has refuses with SQLITE_FULL, as a full disk does) a
// device's enrollment is refused with 503 unavailable, a retry hint and a
// message that says why; /readyz leaves rotation naming the cause; the
// operator's reads and /healthz go on; and when the file may grow again
// readiness and writes come back without a restart. store's tests do the
// same on a real full tmpfs and a read-only PostgreSQL.
func TestDatabaseUnwritable(t *testing.T) {
	t.Parallel()
	// Enough enrollments to fill the last free pages, from one address.
	tb := setupWith(t, setupOpts{deviceRate: rate.Inf})
	first := tb.enroll(t, newDevice(t))
	pages := 0
	if err := tb.db.SQL().QueryRowContext(t.Context(), "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	pragma(t, tb, fmt.Sprintf("PRAGMA max_page_count = %d", pages))

	var refused *http.Response
	for i := 0; refused == nil && i < 1000; i++ {
		d := newDevice(t)
		resp, err := http.DefaultClient.Do(d.request(t, tb.url, protocol.PathEnroll, d.enrollBody(t, fmt.Sprintf("02:00:00:01:%02x:%02x", i>>8, i&0xff))))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			refused = resp
		}
	}
	if refused == nil || refused.StatusCode != http.StatusServiceUnavailable || refused.Header.Get("Retry-After") == "" {
		t.Fatalf("enrollments on a full database: %v, want a 503 with Retry-After", refused)
	}
	var e apiError
	d := newDevice(t)
	if code := do(t, d.request(t, tb.url, protocol.PathEnroll, d.enrollBody(t, "02:00:00:02:00:01")), &e); code != 503 ||
		e.Error.Code != gatehouse.EUNAVAILABLE || !strings.Contains(e.Error.Message, "cannot be written (disk full or read-only)") {
		t.Fatalf("enroll while full = %d %+v, want 503 unavailable saying the database cannot be written", code, e)
	}
	if code, r := readyz(t, tb, false); code != 503 || r.Reason != "database unwritable" || r.Error.Code != gatehouse.EUNAVAILABLE {
		t.Fatalf("readyz while full = %d %+v, want 503 database unwritable", code, r)
	}
	var list struct{ Total int }
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices", nil, &list); code != 200 || list.Total == 0 {
		t.Errorf("list while full = %d, %d devices; reads must go on", code, list.Total)
	}
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices/"+first.DeviceID, nil, nil); code != 200 {
		t.Errorf("get while full = %d; reads must go on", code)
	}
	if code := tb.call(t, "", "GET", "/healthz", nil, nil); code != 200 {
		t.Errorf("healthz while full = %d", code)
	}

	pragma(t, tb, "PRAGMA max_page_count = 1073741823")
	deadline := time.Now().Add(time.Minute)
	for {
		code, r := readyz(t, tb, false)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after space came back = %d %+v, want 200", code, r)
		}
		time.Sleep(50 * time.Millisecond) // a poll tick; the store probes once a second
	}
	tb.enroll(t, newDevice(t))
}

func pragma(t *testing.T, tb *testBundle, q string) {
	t.Helper()
	var v int
	if err := tb.db.SQL().QueryRowContext(t.Context(), q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
