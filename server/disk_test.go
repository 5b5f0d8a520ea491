package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"modernc.org/sqlite"

	"gatehouse"
	"gatehouse/protocol"
)

// TestDatabaseUnwritable: once SQLite cannot write its file (a full disk,
// as max_page_count at the pages it has gives with SQLITE_FULL; or a
// read-only file, as query_only gives with SQLITE_READONLY) a device's
// enrollment is refused with 503 unavailable, a retry hint and a message
// that says why; /readyz leaves rotation naming the cause; the operator's
// reads and /healthz go on; and when the file may be written again
// readiness and writes come back without a restart. store's tests do the
// same on a real full tmpfs and a read-only PostgreSQL.
func TestDatabaseUnwritable(t *testing.T) {
	t.Parallel()
	t.Run("full", func(t *testing.T) {
		t.Parallel()
		testUnwritable(t, func(t *testing.T, tb *testBundle) {
			pages := 0
			if err := tb.db.SQL().QueryRowContext(t.Context(), "PRAGMA page_count").Scan(&pages); err != nil {
				t.Fatal(err)
			}
			setPragma(t, tb, fmt.Sprintf("PRAGMA max_page_count = %d", pages))
		}, func(t *testing.T, tb *testBundle) { clearPragma(t, tb, "PRAGMA max_page_count = 1073741823") })
	})
	t.Run("read-only", func(t *testing.T) {
		t.Parallel()
		testUnwritable(t, func(t *testing.T, tb *testBundle) { setPragma(t, tb, "PRAGMA query_only = 1") },
			func(t *testing.T, tb *testBundle) { clearPragma(t, tb, "PRAGMA query_only = 0") })
	})
}

func testUnwritable(t *testing.T, block, free func(*testing.T, *testBundle)) {
	// Enough enrollments to fill the last free pages, from one address.
	tb := setupWith(t, setupOpts{deviceRate: rate.Inf})
	first := tb.enroll(t, newDevice(t))
	block(t, tb)

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
		t.Errorf("list while unwritable = %d, %d devices; reads must go on", code, list.Total)
	}
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices/"+first.DeviceID, nil, nil); code != 200 {
		t.Errorf("get while unwritable = %d; reads must go on", code)
	}
	if code := tb.call(t, "", "GET", "/healthz", nil, nil); code != 200 {
		t.Errorf("healthz while unwritable = %d", code)
	}

	free(t, tb)
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

// filePragmas holds, by database file, a pragma every new SQLite
// connection to it runs, as a full disk or a read-only file would meet any
// connection: the driver replaces a connection whose statement was
// interrupted (a cancelled wait, a job queue poll), and a pragma set only
// on the old one would be gone.
var filePragmas sync.Map

func init() {
	sqlite.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, dsn string) error {
		var pragma string
		filePragmas.Range(func(k, v any) bool {
			if strings.Contains(dsn, k.(string)+"?") {
				pragma = v.(string)
				return false
			}
			return true
		})
		if pragma == "" {
			return nil
		}
		_, err := c.ExecContext(context.Background(), pragma, nil)
		return err
	})
}

// setPragma runs pragma on tb's database connection and on every one
// opened later; clearPragma stops that and runs undo.
func setPragma(t *testing.T, tb *testBundle, pragma string) {
	t.Helper()
	filePragmas.Store(dbFile(t, tb), pragma)
	execPragma(t, tb, pragma)
}

func clearPragma(t *testing.T, tb *testBundle, undo string) {
	t.Helper()
	filePragmas.Delete(dbFile(t, tb))
	execPragma(t, tb, undo)
}

func dbFile(t *testing.T, tb *testBundle) string {
	t.Helper()
	var seq int
	var name, file string
	if err := tb.db.SQL().QueryRowContext(t.Context(), "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

func execPragma(t *testing.T, tb *testBundle, q string) {
	t.Helper()
	if _, err := tb.db.SQL().ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
