package protocol_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

func sessionWait(t *testing.T, g *protocol.SessionGrant, body []byte, now time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, protocol.PathWait, bytes.NewReader(body))
	if err := protocol.SignSession(r, body, g, now); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSessionRoundTripAndExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sessions := protocol.NewSessions(bytes.Repeat([]byte{3}, protocol.ServerSecretSize))
	v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Sessions: sessions, Now: func() time.Time { return now }}
	key := edKey(t)
	fp := protocol.Fingerprint(spkiOf(t, key.Public()))
	g, err := sessions.Grant(fp, now)
	if err != nil {
		t.Fatal(err)
	}
	if g.Expires != now.Add(protocol.SessionTTL).Unix() {
		t.Errorf("expires %d, want %d", g.Expires, now.Add(protocol.SessionTTL).Unix())
	}
	body := []byte(`{"state":"pending"}`)
	r := sessionWait(t, g, body, now)
	if !protocol.HasSession(r) {
		t.Fatal("HasSession is false for a session-signed request")
	}
	sig, err := v.VerifySession(context.Background(), r, body)
	if err != nil || sig.Fingerprint != fp || !sig.ViaSession || sig.PublicKey != nil {
		t.Fatalf("VerifySession = %+v, %v; want the key's fingerprint, via session", sig, err)
	}

	// At its expiry the session ends, whatever the request's timestamp.
	now = now.Add(protocol.SessionTTL)
	_, err = v.VerifySession(context.Background(), sessionWait(t, g, body, now), body)
	wantCode(t, err, gatehouse.EUNAUTHORIZED, "expired")

	// A verifier without sessions refuses them clearly.
	bare := &protocol.Verifier{Nonces: protocol.NewNonceCache()}
	_, err = bare.VerifySession(context.Background(), sessionWait(t, g, body, now), body)
	wantCode(t, err, gatehouse.EUNAUTHORIZED, "no sessions")
}

func TestSessionHeadersChecked(t *testing.T) {
	now := time.Now()
	sessions := protocol.NewSessions(bytes.Repeat([]byte{4}, protocol.ServerSecretSize))
	v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Sessions: sessions}
	g, err := sessions.Grant(protocol.Fingerprint(spkiOf(t, edKey(t).Public())), now)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{}`)
	for _, tc := range []struct {
		name, header, value, want string
	}{
		{"garbled token", protocol.HeaderSession, "%%%", "malformed"},
		{"short token", protocol.HeaderSession, "AAAA", "malformed"},
		{"stale timestamp", protocol.HeaderTimestamp, itoa64(now.Add(-time.Hour).Unix()), "outside"},
		{"bad nonce", protocol.HeaderNonce, "xyz", "malformed"},
		{"no signature", protocol.HeaderSignature, "", "unsigned"},
	} {
		r := sessionWait(t, g, body, now)
		r.Header.Set(tc.header, tc.value)
		_, err := v.VerifySession(context.Background(), r, body)
		t.Run(tc.name, func(t *testing.T) { wantCode(t, err, gatehouse.EUNAUTHORIZED, tc.want) })
	}
	if _, err := sessions.Grant("not hex", now); err == nil {
		t.Error("a session was granted for a malformed fingerprint")
	}
}

// CheckSession is VerifySession short of the nonce: the nonce is used by
// UseNonce alone, and a second use is a replay.
func TestCheckSessionThenUseNonce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sessions := protocol.NewSessions(bytes.Repeat([]byte{5}, protocol.ServerSecretSize))
	v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Sessions: sessions, Now: func() time.Time { return now }}
	fp := protocol.Fingerprint(spkiOf(t, edKey(t).Public()))
	g, err := sessions.Grant(fp, now)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"state":"pending"}`)
	r := sessionWait(t, g, body, now)
	if _, err := v.CheckSession(r, []byte(`{"state":"approved"}`)); err == nil {
		t.Fatal("CheckSession accepted a wrong body")
	}
	first, err := v.CheckSession(r, body)
	if err != nil {
		t.Fatalf("CheckSession: %v", err)
	}
	again, err := v.CheckSession(r, body)
	if err != nil {
		t.Fatalf("a second CheckSession of an unused nonce: %v", err)
	}
	sig, err := first.UseNonce(context.Background())
	if err != nil || sig.Fingerprint != fp || !sig.ViaSession {
		t.Fatalf("UseNonce = %+v, %v; want the key's fingerprint, via session", sig, err)
	}
	_, err = again.UseNonce(context.Background())
	wantCode(t, err, gatehouse.EUNAUTHORIZED, "nonce", "replay")
}
