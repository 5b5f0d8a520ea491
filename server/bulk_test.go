package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse"
)

type bulkOp struct {
	ID     string `json:"id"`
	Total  int    `json:"total"`
	Done   int    `json:"done"`
	Failed int    `json:"failed"`
	Items  []struct {
		DeviceID string `json:"device_id"`
		Name     string `json:"name"`
		State    string `json:"state"`
		Result   string `json:"result"`
	} `json:"items"`
	FinishedAt *time.Time `json:"finished_at"`
}

// TestBulkOverHTTP previews pattern names, starts a bulk approval and
// follows it to the end over the REST API.
func TestBulkOverHTTP(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	var ids []string
	for i := range 3 {
		d := newDevice(t)
		d.mac = fmt.Sprintf("02:00:00:00:0b:%02x", i)
		ids = append(ids, tb.enroll(t, d).DeviceID)
	}
	req := map[string]any{"action": "approve", "ids": ids, "pattern": "site-a-{n:03}", "dry_run": true}
	var plan struct {
		Items []struct {
			DeviceID, Name, MAC string
		} `json:"items"`
		Problems []struct {
			Item  int
			Error string
		} `json:"problems"`
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/bulk", req, &plan); code != http.StatusOK {
		t.Fatalf("dry run: %d", code)
	}
	if len(plan.Problems) != 0 || plan.Items[2].Name != "site-a-003" || plan.Items[0].MAC != "02:00:00:00:0b:00" {
		t.Fatalf("plan = %+v", plan)
	}
	if tb.count(t) != 3 {
		t.Fatal("a dry run changed the device count")
	}
	delete(req, "dry_run")
	var e apiError
	if code := tb.call(t, tb.view, "POST", "/api/v1/bulk", req, &e); code != http.StatusForbidden {
		t.Fatalf("viewer starting a bulk: %d, want 403", code)
	}
	bad := map[string]any{"action": "approve", "ids": ids, "pattern": "Site-{n}"}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/bulk", bad, &e); code != http.StatusBadRequest ||
		!strings.Contains(e.Error.Message, "item 1:") || !strings.Contains(e.Error.Message, "item 3:") {
		t.Fatalf("bad pattern: %d %q, want 400 naming each item", code, e.Error.Message)
	}
	var op bulkOp
	if code := tb.call(t, tb.admin, "POST", "/api/v1/bulk", req, &op); code != http.StatusAccepted || op.Total != 3 {
		t.Fatalf("start: %d %+v", code, op)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for op.FinishedAt == nil {
		<-tick.C
		if code := tb.call(t, tb.view, "GET", "/api/v1/bulk/"+op.ID, nil, &op); code != http.StatusOK {
			t.Fatalf("progress: %d", code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("bulk not finished in 30 s: %+v", op)
		}
	}
	if op.Done != 3 || op.Items[1].Name != "site-a-002" || op.Items[1].State != gatehouse.BulkDone || op.Items[1].DeviceID != ids[1] {
		t.Fatalf("finished: %+v", op)
	}
	if code := tb.call(t, tb.view, "GET", "/api/v1/bulk/nosuch", nil, &e); code != http.StatusNotFound {
		t.Fatalf("unknown bulk: %d, want 404", code)
	}
}
