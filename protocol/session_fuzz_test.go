package protocol_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// fuzzSessionSecret is the server secret of the session fuzz target; fixed,
// so a token granted in one fuzz worker opens in the others.
var fuzzSessionSecret = seedBytes("session secret")

// FuzzVerifySession feeds session-signed requests with arbitrary tokens,
// timestamps, nonces and MACs, and grants sessions for arbitrary
// fingerprints. A grant is made exactly for 64 hex digits, and a request
// signed with it verifies as that fingerprint (in lower case). A request
// that verifies carries a token this server granted, unexpired, and a MAC
// under that token's key over StringToSign; no other does. A refusal is
// unauthorized, returns nothing, and does not repeat the token, the MAC
// or a session key.
func FuzzVerifySession(f *testing.F) {
	sessions := protocol.NewSessions(fuzzSessionSecret)
	fp := protocol.Fingerprint([]byte("a device key"))
	for _, at := range []time.Time{fuzzNow, fuzzNow.Add(-10 * time.Minute), fuzzNow.Add(-protocol.SessionTTL)} {
		g, err := sessions.Grant(fp, at)
		if err != nil {
			f.Fatal(err)
		}
		for _, r := range fuzzSeedRequests {
			h := sessionSigned(f, g, r.method, r.uri, r.body)
			f.Add(r.method, r.uri, r.body, h.Get(protocol.HeaderSession), h.Get(protocol.HeaderTimestamp),
				h.Get(protocol.HeaderNonce), h.Get(protocol.HeaderSignature), fp)
		}
	}
	f.Add(http.MethodPost, protocol.PathWait, []byte("{}"), "AQ", "1800000000", strings.Repeat("a", 32), "AAAA", strings.ToUpper(fp))
	f.Add(http.MethodPost, protocol.PathWait, []byte("{}"), "", "", "", "", "zz")

	f.Fuzz(func(t *testing.T, method, uri string, body []byte, token, ts, nonce, mac, grantFP string) {
		r, ok := fuzzRequest(method, uri)
		if !ok {
			return
		}
		checkGrant(t, sessions, method, uri, body, grantFP)
		for name, v := range map[string]string{protocol.HeaderSession: token, protocol.HeaderTimestamp: ts,
			protocol.HeaderNonce: nonce, protocol.HeaderSignature: mac} {
			if v != "" {
				r.Header.Set(name, v)
			}
		}
		v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Sessions: sessions, Now: func() time.Time { return fuzzNow }}
		s, err := v.VerifySession(context.Background(), r, body)
		g := regrant(sessions, token)
		if err != nil {
			checkRefused(t, s != nil, err, []byte(token), []byte(mac))
			if gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
				t.Fatalf("session refusal %v is not unauthorized", err)
			}
			if g != nil {
				checkNoEcho(t, err.Error(), g.Key)
			}
			return
		}
		if g == nil || !fuzzNow.Before(time.Unix(g.Expires, 0)) {
			t.Fatalf("accepted token %q, which this server did not grant or which expired", token)
		}
		checkClockAndNonce(t, ts, nonce)
		want := hmac.New(sha256.New, g.Key)
		want.Write(protocol.StringToSign(r.Method, r.URL.RequestURI(), body, ts, nonce))
		if got, err := base64.StdEncoding.DecodeString(mac); err != nil || !hmac.Equal(got, want.Sum(nil)) {
			t.Fatal("accepted a MAC that is not the session key's over StringToSign")
		}
		if !s.ViaSession || s.PublicKey != nil || s.Fingerprint != g.fp {
			t.Fatalf("Signed = %+v, want the session's fingerprint %s", s, g.fp)
		}
	})
}

func sessionSigned(f *testing.F, g *protocol.SessionGrant, method, uri string, body []byte) http.Header {
	req, err := http.NewRequest(method, "http://gatehouse.invalid"+uri, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := protocol.SignSession(req, body, g, fuzzNow); err != nil {
		f.Fatal(err)
	}
	return req.Header
}

// checkGrant: a grant is made exactly for 32 bytes of hex, and a request
// signed with it verifies as that fingerprint.
func checkGrant(t *testing.T, sessions *protocol.Sessions, method, uri string, body []byte, fp string) {
	t.Helper()
	raw, hexErr := hex.DecodeString(fp)
	g, err := sessions.Grant(fp, fuzzNow)
	if (err == nil) != (hexErr == nil && len(raw) == sha256.Size) {
		t.Fatalf("Grant(%q) err = %v", fp, err)
	}
	if err != nil {
		checkRefused(t, g != nil, err, []byte(fp))
		return
	}
	req, ok := fuzzRequest(method, uri)
	if !ok {
		return
	}
	if err := protocol.SignSession(req, body, g, fuzzNow); err != nil {
		t.Fatal(err)
	}
	v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Sessions: sessions, Now: func() time.Time { return fuzzNow }}
	s, err := v.VerifySession(context.Background(), req, body)
	if err != nil || s.Fingerprint != strings.ToLower(fp) || !s.ViaSession {
		t.Fatalf("a request signed with a fresh grant for %s: %+v, %v", fp, s, err)
	}
}

// grantOf is a token this server granted, opened by granting it again.
type grantOf struct {
	*protocol.SessionGrant
	fp string
}

// regrant returns the grant token would be if this server made it: the
// grant for the same fingerprint and expiry, when the token is that grant's
// token byte for byte, else nil. The fuzzer cannot forge a token, so any
// token accepted must pass this.
func regrant(sessions *protocol.Sessions, token string) *grantOf {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 1+8+sha256.Size+sha256.Size {
		return nil
	}
	fp := hex.EncodeToString(raw[9 : 9+sha256.Size])
	var exp int64
	for _, b := range raw[1:9] {
		exp = exp<<8 | int64(b)
	}
	g, err := sessions.Grant(fp, time.Unix(exp, 0).Add(-protocol.SessionTTL))
	if err != nil || g.Token != token || !bytes.Equal(raw[:1], []byte{1}) {
		return nil
	}
	return &grantOf{SessionGrant: g, fp: fp}
}
