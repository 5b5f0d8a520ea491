package provision_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/webhook"
)

// receiver records verified deliveries and refuses the first few.
type receiver struct {
	mu       sync.Mutex
	refuse   int
	attempts int
	states   []string
	bad      []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts++
	if err := webhook.Verify([]byte("hook-secret"), r.Header, body, time.Now(), 5*time.Minute); err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.refuse > 0 {
		rc.refuse--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var e webhook.Event
	json.Unmarshal(body, &e)
	rc.states = append(rc.states, e.PreviousState+">"+e.State)
}

func (rc *receiver) seen() ([]string, int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.states...), rc.attempts, rc.bad
}

func TestWebhooksSignedAndRetried(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	rc := &receiver{refuse: 2}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	cfg := followConfig(tb)
	cfg.Webhook = &webhook.Sender{URL: srv.URL, Secret: []byte("hook-secret")}
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "w.db")), cfg)
	g, id := tb.provisionOne(t, "gw-hook")
	tb.register(t, "gw-hook", "")
	tb.waitFor(t, g, gatehouse.StateConfigured)

	want := map[string]bool{"pending>approved": true, "approved>provisioning": true,
		"provisioning>provisioned": true, "provisioned>configured": true}
	// Deliveries run in their own queue, so they may still be under way.
	var states []string
	var attempts int
	var bad []string
	done := func() bool {
		states, attempts, bad = rc.seen()
		return len(bad) > 0 || len(states) == len(want) && attempts == len(want)+2
	}
	if !eventually(waitTimeout, done) {
		t.Fatalf("deliveries %v after %d attempts in %v; want %d events, each once, after 2 refusals", states, attempts, waitTimeout, len(want))
	}
	if len(bad) > 0 {
		t.Fatalf("deliveries failed verification: %v", bad)
	}
	for _, s := range states {
		if !want[s] {
			t.Fatalf("unexpected delivery %s in %v", s, states)
		}
		delete(want, s)
	}
	if len(want) > 0 {
		t.Fatalf("missing deliveries %v in %v", want, states)
	}
	d, _ := tb.svc.Device(context.Background(), id)
	if d.State != gatehouse.StateConfigured {
		t.Fatalf("state = %s", d.State)
	}
}
