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
	deadline := time.Now().Add(20 * time.Second)
	for {
		states, attempts, bad := rc.seen()
		got := map[string]bool{}
		for _, s := range states {
			got[s] = true
		}
		if len(bad) > 0 {
			t.Fatalf("deliveries failed verification: %v", bad)
		}
		if len(got) == len(want) && len(states) == len(want) && attempts == len(want)+2 {
			for s := range want {
				if !got[s] {
					t.Fatalf("missing delivery %s in %v", s, states)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %v after %d attempts; want %d events, each once, after 2 refusals", states, attempts, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	d, _ := tb.svc.Device(context.Background(), id)
	if d.State != gatehouse.StateConfigured {
		t.Fatalf("state = %s", d.State)
	}
}
