package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// sessionRequest is a wait signed with the session g.
func sessionRequest(t *testing.T, url, path string, body []byte, g *protocol.SessionGrant) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(body))
	if err := protocol.SignSession(req, body, g, time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

// enrollForSession enrolls d with its key and returns the session granted.
func enrollForSession(t *testing.T, url string, d *device) (protocol.Status, *protocol.SessionGrant) {
	t.Helper()
	var st protocol.Status
	if code := do(t, d.request(t, url, protocol.PathEnroll, d.enrollBody(t, d.mac)), &st); code != http.StatusOK {
		t.Fatalf("enroll: %d", code)
	}
	if st.Session == nil || st.Session.Token == "" || len(st.Session.Key) != 32 {
		t.Fatalf("a key-signed enroll got no usable session: %+v", st.Session)
	}
	return st, st.Session
}

func wantUnauthorized(t *testing.T, what string, code int, e apiError, mention string) {
	t.Helper()
	if code != http.StatusUnauthorized || e.Error.Code != gatehouse.EUNAUTHORIZED || !strings.Contains(e.Error.Message, mention) {
		t.Errorf("%s: %d %+v, want 401 mentioning %q", what, code, e, mention)
	}
}

// A session's waits read the gateway's own state, without a key signature,
// under the same replay rules; a session cannot be stretched to another
// gateway, another request kind, or past a restart's replay memory.
func TestSessionWaits(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	srv := startStack(t, path)
	a := newDevice(t)
	b := newDevice(t)
	b.mac = "02:00:00:00:00:02"
	stA, g := enrollForSession(t, srv.url, a)
	stB, gB := enrollForSession(t, srv.url, b)

	wait, _ := json.Marshal(protocol.WaitRequest{State: "approved"}) // differs: answered at once
	var got protocol.Status
	if code := do(t, sessionRequest(t, srv.url, protocol.PathWait, wait, g), &got); code != http.StatusOK {
		t.Fatalf("session wait: %d", code)
	}
	if got.DeviceID != stA.DeviceID || got.Fingerprint != stA.Fingerprint || got.Session != nil {
		t.Fatalf("session wait answered %+v; want gateway A's own status and no new session", got)
	}

	// Replayed byte for byte, to this process or after a restart: refused.
	req := sessionRequest(t, srv.url, protocol.PathWait, wait, g)
	replay := captured{path: protocol.PathWait, hdr: req.Header.Clone(), body: wait}
	if code := do(t, req, &got); code != http.StatusOK {
		t.Fatalf("session wait: %d", code)
	}
	code, e := replay.sendTo(t, srv.url)
	wantReplayRefused(t, code, e)

	// The body, path or token changed after signing: refused.
	tampered := sessionRequest(t, srv.url, protocol.PathWait, wait, g)
	tampered.Body, tampered.ContentLength = http.NoBody, 0
	code = do(t, tampered, &e)
	wantUnauthorized(t, "session wait with another body", code, e, "does not verify")
	code = do(t, sessionRequest(t, srv.url, protocol.PathEnroll, a.enrollBody(t, a.mac), g), &e)
	wantUnauthorized(t, "enroll with a session", code, e, "may only wait")
	code = do(t, sessionRequest(t, srv.url, protocol.PathAck, []byte(`{"name":"x"}`), g), &e)
	wantUnauthorized(t, "ack with a session", code, e, "may only wait")

	// A's token with B's fingerprint spliced in is not the server's.
	tok, _ := base64.RawURLEncoding.DecodeString(g.Token)
	tokB, _ := base64.RawURLEncoding.DecodeString(gB.Token)
	copy(tok[9:41], tokB[9:41])
	forged := &protocol.SessionGrant{Token: base64.RawURLEncoding.EncodeToString(tok), Key: g.Key, Expires: g.Expires}
	code = do(t, sessionRequest(t, srv.url, protocol.PathWait, wait, forged), &e)
	wantUnauthorized(t, "a token changed to name gateway B", code, e, "not issued by this server")
	// B's token with A's key: the MAC is wrong.
	mixed := &protocol.SessionGrant{Token: gB.Token, Key: g.Key, Expires: gB.Expires}
	code = do(t, sessionRequest(t, srv.url, protocol.PathWait, wait, mixed), &e)
	wantUnauthorized(t, "B's token signed with A's session key", code, e, "does not verify")

	// Sessions outlive a restart (the secret is in the database), and so
	// does the memory of their nonces.
	srv.stop()
	again := startStack(t, path)
	code, e = replay.sendTo(t, again.url)
	wantReplayRefused(t, code, e)
	if code := do(t, sessionRequest(t, again.url, protocol.PathWait, wait, gB), &got); code != http.StatusOK || got.DeviceID != stB.DeviceID {
		t.Fatalf("B's session after a restart: %d %+v", code, got)
	}
}

// Another database is another server: its sessions are not accepted.
func TestSessionOfAnotherServerRefused(t *testing.T) {
	t.Parallel()
	one := startStack(t, filepath.Join(t.TempDir(), "one.db"))
	other := startStack(t, filepath.Join(t.TempDir(), "other.db"))
	d := newDevice(t)
	_, g := enrollForSession(t, one.url, d)
	enrollForSession(t, other.url, d)
	wait, _ := json.Marshal(protocol.WaitRequest{State: "approved"})
	var e apiError
	code := do(t, sessionRequest(t, other.url, protocol.PathWait, wait, g), &e)
	wantUnauthorized(t, "a session of another server", code, e, "not issued by this server")
}
