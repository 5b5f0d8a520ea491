package client_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/client"
)

func TestAuditLogQuery(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		writeJSON(w, 200, map[string]any{"entries": []audit.Entry{{Seq: 7}}, "next_before": 6})
	})
	p, err := c.AuditLog(context.Background(), 0, 0)
	if err != nil || len(p.Entries) != 1 || p.NextBefore != 6 {
		t.Fatalf("AuditLog = %+v, %v", p, err)
	}
	if _, err := c.AuditLog(context.Background(), 7, 50); err != nil {
		t.Fatal(err)
	}
	want := []string{"/api/v1/audit?", "/api/v1/audit?before=7&limit=50"}
	if len(queries) != 2 || queries[0] != want[0] || queries[1] != want[1] {
		t.Errorf("queries %q, want %q", queries, want)
	}
}

// TestAuditEntriesPages reads a log of more than one page, oldest first,
// asking each page after the last entry of the one before.
func TestAuditEntriesPages(t *testing.T) {
	const n = client.AuditPageSize + 234
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		entries := []audit.Entry{}
		for s := after + 1; s <= n && len(entries) < limit; s++ {
			entries = append(entries, audit.Entry{Seq: s})
		}
		writeJSON(w, 200, map[string]any{"entries": entries, "next_before": 0, "next_after": after + int64(len(entries))})
	})
	var got int64
	for e, err := range c.AuditEntries(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != got+1 {
			t.Fatalf("entry %d after %d", e.Seq, got)
		}
		got = e.Seq
	}
	if got != n {
		t.Errorf("read %d entries, want %d", got, n)
	}
}

func TestAuditEntriesStopsAtAnError(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 403, map[string]any{"error": map[string]string{"code": "forbidden", "message": "this needs admin"}})
	})
	n := 0
	for _, err := range c.AuditEntries(context.Background()) {
		n++
		if gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN {
			t.Errorf("error %v, want forbidden", err)
		}
	}
	if n != 1 {
		t.Errorf("%d results, want the one error", n)
	}
}
