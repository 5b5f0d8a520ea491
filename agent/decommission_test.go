package agent

import (
	"net/http"
	"testing"

	"gatehouse/protocol"
)

// TestRunGoneIsFinal: a 410 (the server's answer to a decommissioned key)
// ends the run with ExitDismissed at once, the server's message in the
// error, with no retry.
func TestRunGoneIsFinal(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	f.fail("", http.StatusGone)
	r := await(t, runAsync(t.Context(), cfg))
	wantExit(t, r.err, ExitDismissed, "enroll refused", "injected fault", "not retrying")
	if n := f.callCount(protocol.PathEnroll); n != 1 {
		t.Errorf("%d enroll calls, want 1: a decommissioned gateway must not retry", n)
	}
}
