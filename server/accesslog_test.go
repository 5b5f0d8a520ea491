package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"gatehouse/protocol"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log records logged so far with the given message.
func (b *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAccessLog(t *testing.T) {
	logs := &syncBuffer{}
	tb := setupWith(t, setupOpts{logger: slog.New(slog.NewJSONHandler(logs, nil))})

	req, _ := http.NewRequest("GET", tb.url+"/api/v1/devices/dev-123?state=pending", nil)
	req.Header.Set("Authorization", "Bearer "+tb.admin)
	req.Header.Set("X-Request-Id", "trace-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("X-Request-Id %q, want the caller's", got)
	}
	for range 3 {
		tb.call(t, "wrong-"+tb.admin, "GET", "/api/v1/devices", nil, nil)
	}

	recs := logs.lines(t, "http request")
	if len(recs) != 4 {
		t.Fatalf("%d access lines, want 4:\n%s", len(recs), logs)
	}
	want := map[string]any{"method": "GET", "route": "GET /api/v1/devices/{id}", "status": float64(404),
		"actor": "token:admin", "request_id": "trace-42", "source": "127.0.0.1"}
	for k, v := range want {
		if recs[0][k] != v {
			t.Errorf("%s = %v, want %v", k, recs[0][k], v)
		}
	}
	if _, ok := recs[0]["duration"]; !ok {
		t.Error("no duration")
	}
	if id, _ := recs[1]["request_id"].(string); len(id) < 16 {
		t.Errorf("generated request id %q", id)
	}
	if warns := logs.lines(t, "credentials refused"); len(warns) != 1 {
		t.Errorf("%d warn lines for 3 refusals in a minute, want 1", len(warns))
	}
	for _, secret := range []string{tb.admin, "dev-123", "pending"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
}

// TestAccessLogWaitsAtDebug: a wait that answers 200 is logged at debug,
// so a fleet's re-polls stay out of an info log; a refused one is not.
func TestAccessLogWaitsAtDebug(t *testing.T) {
	logs := &syncBuffer{}
	tb := setupWith(t, setupOpts{logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	d := newDevice(t)
	tb.enroll(t, d)
	body, _ := json.Marshal(protocol.WaitRequest{State: ""})
	if code := do(t, d.request(t, tb.url, protocol.PathWait, body), nil); code != http.StatusOK {
		t.Fatalf("wait = %d", code)
	}
	stranger := newDevice(t)
	if code := do(t, stranger.request(t, tb.url, protocol.PathWait, body), nil); code < 400 {
		t.Fatalf("wait of a key never enrolled = %d, want it refused", code)
	}
	levels := map[float64]string{}
	for _, rec := range logs.lines(t, "http request") {
		if rec["route"] == "POST "+protocol.PathWait {
			levels[rec["status"].(float64)], _ = rec["level"].(string)
		}
	}
	if levels[200] != "DEBUG" {
		t.Errorf("answered wait logged at %q, want DEBUG (lines by status: %v)", levels[200], levels)
	}
	for status, level := range levels {
		if status != 200 && level != "INFO" {
			t.Errorf("wait answered %v logged at %q, want INFO", status, level)
		}
	}
	if len(levels) < 2 {
		t.Errorf("want a line for the answered wait and one for the refused one: %v\n%s", levels, logs)
	}
}
