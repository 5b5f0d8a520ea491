package protocol_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// verifyServer verifies every request it receives and reports the outcome.
type verifyServer struct {
	*httptest.Server
	verifier *protocol.Verifier
	mu       sync.Mutex
	signed   *protocol.Signed
	err      error
}

func newVerifyServer(t *testing.T) *verifyServer {
	vs := &verifyServer{verifier: &protocol.Verifier{Nonces: protocol.NewNonceCache()}}
	vs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err == nil {
			vs.mu.Lock()
			vs.signed, vs.err = vs.verifier.Verify(r.Context(), r, body)
			vs.mu.Unlock()
		}
	}))
	t.Cleanup(vs.Close)
	return vs
}

// send signs a request with body, lets tamper change it, sends it and
// returns the server's verdict.
func (vs *verifyServer) send(t *testing.T, key crypto.Signer, method, path string, body []byte, tamper func(*http.Request) []byte) (*protocol.Signed, error) {
	t.Helper()
	req, err := http.NewRequest(method, vs.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.SignRequest(req, body, key, time.Now()); err != nil {
		t.Fatalf("SignRequest: %v", err)
	}
	if tamper != nil {
		body = tamper(req)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	resp, err := vs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	return vs.signed, vs.err
}

func TestSignVerifyRoundTripOverHTTP(t *testing.T) {
	vs := newVerifyServer(t)
	for _, k := range supportedKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			body := []byte(`{"mac":"02:00:00:00:00:01"}`)
			signed, err := vs.send(t, k.key, http.MethodPost, protocol.PathEnroll+"?wait=30s&x=a%20b", body, nil)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			spki := spkiOf(t, k.key.Public())
			if !bytes.Equal(signed.PublicKey, spki) || signed.Fingerprint != protocol.Fingerprint(spki) || signed.KeyType != k.keyType {
				t.Errorf("Signed = %+v, want key type %s and fingerprint %s", signed, k.keyType, protocol.Fingerprint(spki))
			}
			if _, err := vs.send(t, k.key, http.MethodGet, protocol.PathWait, nil, nil); err != nil {
				t.Errorf("GET without body: %v", err)
			}
		})
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	vs := newVerifyServer(t)
	body := []byte(`{"state":"pending"}`)
	tampers := map[string]func(*http.Request) []byte{
		"body":   func(*http.Request) []byte { return []byte(`{"state":"approved"}`) },
		"path":   func(r *http.Request) []byte { r.URL.Path = protocol.PathAck; return body },
		"query":  func(r *http.Request) []byte { r.URL.RawQuery = "x=2"; return body },
		"method": func(r *http.Request) []byte { r.Method = http.MethodPut; return body },
		"timestamp": func(r *http.Request) []byte {
			r.Header.Set(protocol.HeaderTimestamp, itoa64(time.Now().Unix()+1))
			return body
		},
		"nonce": func(r *http.Request) []byte {
			r.Header.Set(protocol.HeaderNonce, strings.Repeat("ab", 16))
			return body
		},
		"other key": func(r *http.Request) []byte {
			other, _, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set(protocol.HeaderKey, base64.StdEncoding.EncodeToString(spkiOf(t, other)))
			return body
		},
	}
	for _, k := range supportedKeys(t) {
		for name, tamper := range tampers {
			t.Run(k.name+"/"+name, func(t *testing.T) {
				_, err := vs.send(t, k.key, http.MethodPost, protocol.PathWait+"?x=1", body, tamper)
				wantCode(t, err, gatehouse.EUNAUTHORIZED, "signature does not verify")
			})
		}
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// signedRequest builds a server-side request signed at now.
func signedRequest(t *testing.T, key crypto.Signer, body []byte, now time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, protocol.PathEnroll, bytes.NewReader(body))
	if err := protocol.SignRequest(r, body, key, now); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerifyMissingHeaders(t *testing.T) {
	key := edKey(t)
	for _, h := range []string{protocol.HeaderKey, protocol.HeaderTimestamp, protocol.HeaderNonce, protocol.HeaderSignature} {
		t.Run(h, func(t *testing.T) {
			r := signedRequest(t, key, nil, time.Now())
			r.Header.Del(h)
			v := &protocol.Verifier{Nonces: protocol.NewNonceCache()}
			_, err := v.Verify(context.Background(), r, nil)
			wantCode(t, err, gatehouse.EUNAUTHORIZED, "missing header", h)
		})
	}
	r := httptest.NewRequest(http.MethodPost, protocol.PathEnroll, nil)
	_, err := (&protocol.Verifier{Nonces: protocol.NewNonceCache()}).Verify(context.Background(), r, nil)
	wantCode(t, err, gatehouse.EUNAUTHORIZED, protocol.HeaderKey, protocol.HeaderSignature)
}

func TestVerifyTimestampWindow(t *testing.T) {
	key := ecKey(t, elliptic.P256())
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name   string
		offset time.Duration
		ok     bool
		want   string
	}{
		{"now", 0, true, ""},
		{"4m59s old", -4*time.Minute - 59*time.Second, true, ""},
		{"5m old", -protocol.MaxSkew, true, ""},
		{"5m ahead", protocol.MaxSkew, true, ""},
		{"5m1s old", -protocol.MaxSkew - time.Second, false, "5m1s behind"},
		{"5m1s ahead", protocol.MaxSkew + time.Second, false, "5m1s ahead of"},
		{"an hour old", -time.Hour, false, "1h0m0s behind"},
		{"a day ahead", 24 * time.Hour, false, "24h0m0s ahead of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Now: func() time.Time { return now }}
			_, err := v.Verify(context.Background(), signedRequest(t, key, nil, now.Add(c.offset)), nil)
			if c.ok {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantCode(t, err, gatehouse.EUNAUTHORIZED, "timestamp", c.want, "±5m0s")
		})
	}
}

func TestVerifyMalformedHeaders(t *testing.T) {
	key := edKey(t)
	small := cachedKey(t, "rsa-1024", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 1024) })
	cases := []struct {
		name, header, value, code string
		want                      []string
	}{
		{"key not base64", protocol.HeaderKey, "%%%", gatehouse.EINVALID, []string{protocol.HeaderKey, "base64"}},
		{"key junk", protocol.HeaderKey, base64.StdEncoding.EncodeToString([]byte("junk")), gatehouse.EINVALID, []string{protocol.HeaderKey}},
		{"key rsa-1024", protocol.HeaderKey, base64.StdEncoding.EncodeToString(spkiOf(t, small.Public())), gatehouse.EINVALID, []string{"RSA 1024-bit", "not supported"}},
		{"key p384", protocol.HeaderKey, base64.StdEncoding.EncodeToString(spkiOf(t, ecKey(t, elliptic.P384()).Public())), gatehouse.EINVALID, []string{"ECDSA P-384", "not supported"}},
		{"timestamp text", protocol.HeaderTimestamp, "yesterday", gatehouse.EUNAUTHORIZED, []string{protocol.HeaderTimestamp, "unix seconds"}},
		{"timestamp millis", protocol.HeaderTimestamp, itoa64(time.Now().UnixMilli()), gatehouse.EUNAUTHORIZED, []string{"timestamp"}},
		{"timestamp plus sign", protocol.HeaderTimestamp, "+" + itoa64(time.Now().Unix()), gatehouse.EUNAUTHORIZED, []string{"unix seconds"}},
		{"nonce upper case", protocol.HeaderNonce, strings.Repeat("AB", 16), gatehouse.EUNAUTHORIZED, []string{protocol.HeaderNonce, "32 lower-case hex"}},
		{"nonce short", protocol.HeaderNonce, strings.Repeat("ab", 15), gatehouse.EUNAUTHORIZED, []string{protocol.HeaderNonce}},
		{"nonce not hex", protocol.HeaderNonce, strings.Repeat("zz", 16), gatehouse.EUNAUTHORIZED, []string{protocol.HeaderNonce}},
		{"signature not base64", protocol.HeaderSignature, "%%%", gatehouse.EUNAUTHORIZED, []string{protocol.HeaderSignature, "base64"}},
		{"signature wrong", protocol.HeaderSignature, base64.StdEncoding.EncodeToString(make([]byte, 64)), gatehouse.EUNAUTHORIZED, []string{"signature does not verify"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := signedRequest(t, key, nil, time.Now())
			r.Header.Set(c.header, c.value)
			_, err := (&protocol.Verifier{Nonces: protocol.NewNonceCache()}).Verify(context.Background(), r, nil)
			wantCode(t, err, c.code, c.want...)
			msg := gatehouse.ErrorMessage(err)
			for _, h := range []string{protocol.HeaderKey, protocol.HeaderSignature} {
				if v := r.Header.Get(h); len(v) > 8 && strings.Contains(msg, v) {
					t.Errorf("message leaks the %s header value: %q", h, msg)
				}
			}
		})
	}
}

func TestVerifyRejectsReplay(t *testing.T) {
	v := &protocol.Verifier{Nonces: protocol.NewNonceCache()}
	for _, k := range supportedKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			body := []byte(`{"name":"gw-1"}`)
			r := signedRequest(t, k.key, body, time.Now())
			if _, err := v.Verify(context.Background(), r, body); err != nil {
				t.Fatalf("first Verify: %v", err)
			}
			_, err := v.Verify(context.Background(), r, body)
			wantCode(t, err, gatehouse.EUNAUTHORIZED, "nonce", "replay")
		})
	}
}

// recordingStore counts calls and can fail on demand.
type recordingStore struct {
	calls   int
	fp      string
	expires time.Time
	err     error
}

func (s *recordingStore) UseNonce(_ context.Context, fingerprint, _ string, expires time.Time) error {
	s.calls++
	s.fp, s.expires = fingerprint, expires
	return s.err
}

func TestVerifyUsesNonceOnlyAfterSignature(t *testing.T) {
	key := edKey(t)
	store := &recordingStore{}
	v := &protocol.Verifier{Nonces: store}
	r := signedRequest(t, key, []byte("signed"), time.Now())
	if _, err := v.Verify(context.Background(), r, []byte("not what was signed")); err == nil {
		t.Fatal("Verify accepted a wrong body")
	}
	if store.calls != 0 {
		t.Fatalf("UseNonce called %d times for an unverified request", store.calls)
	}
	now := time.Unix(1_800_000_000, 0)
	v.Now = func() time.Time { return now }
	r = signedRequest(t, key, nil, now)
	if _, err := v.Verify(context.Background(), r, nil); err != nil {
		t.Fatal(err)
	}
	if store.calls != 1 || store.fp != protocol.Fingerprint(spkiOf(t, key.Public())) {
		t.Errorf("UseNonce calls = %d, fingerprint = %q", store.calls, store.fp)
	}
	if store.expires.Before(now.Add(protocol.MaxSkew)) {
		t.Errorf("nonce expires at %v, before the timestamp leaves the window", store.expires)
	}
}

func TestVerifyNonceStoreFailure(t *testing.T) {
	store := &recordingStore{err: errors.New("database is locked")}
	v := &protocol.Verifier{Nonces: store}
	_, err := v.Verify(context.Background(), signedRequest(t, edKey(t), nil, time.Now()), nil)
	if err == nil || gatehouse.ErrorCode(err) != gatehouse.EINTERNAL || !errors.Is(err, store.err) {
		t.Errorf("err = %v (code %s), want the store error as internal", err, gatehouse.ErrorCode(err))
	}
	store.err = gatehouse.Errorf(gatehouse.EUNAVAILABLE, "store down")
	_, err = v.Verify(context.Background(), signedRequest(t, edKey(t), nil, time.Now()), nil)
	if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Errorf("code = %s, want the store's own code", gatehouse.ErrorCode(err))
	}
	v.Nonces = nil
	if _, err := v.Verify(context.Background(), signedRequest(t, edKey(t), nil, time.Now()), nil); err == nil {
		t.Error("Verify without a NonceStore accepted a request")
	}
}

func TestSignRequestRejectsUnsupportedKey(t *testing.T) {
	small := cachedKey(t, "rsa-1024", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 1024) })
	r := httptest.NewRequest(http.MethodPost, protocol.PathEnroll, nil)
	if err := protocol.SignRequest(r, nil, small, time.Now()); err == nil {
		t.Fatal("SignRequest accepted RSA 1024")
	}
	if r.Header.Get(protocol.HeaderSignature) != "" {
		t.Error("SignRequest set a signature header despite failing")
	}
}

func TestSignRequestFreshNonces(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		r := signedRequest(t, edKey(t), nil, time.Now())
		n := r.Header.Get(protocol.HeaderNonce)
		if seen[n] {
			t.Fatalf("nonce %s repeated", n)
		}
		seen[n] = true
	}
}

// A nonce begins with the signing time's nanoseconds within its second, so
// the server's nonce order (expiry from the signed second, then nonce)
// gets an agent's nonces in the order they were made; the other 12 bytes
// are random, so two made at one instant still differ. Key- and
// session-signed requests share the rule.
func TestNonceStartsWithSubsecondTime(t *testing.T) {
	at := time.Unix(1_800_000_000, 123_456_789)
	prefix := func(r *http.Request) string {
		n := r.Header.Get(protocol.HeaderNonce)
		if len(n) != 32 {
			t.Fatalf("nonce %q: want 32 hex characters", n)
		}
		return n[:8]
	}
	a, b := signedRequest(t, edKey(t), nil, at), signedRequest(t, edKey(t), nil, at)
	if prefix(a) != "075bcd15" || prefix(b) != "075bcd15" {
		t.Errorf("nonce prefixes %s, %s: want 075bcd15 (123456789 ns, big-endian)", prefix(a), prefix(b))
	}
	if a.Header.Get(protocol.HeaderNonce) == b.Header.Get(protocol.HeaderNonce) {
		t.Error("two nonces made at one instant are equal")
	}
	later := signedRequest(t, edKey(t), nil, at.Add(time.Millisecond))
	if prefix(later) <= prefix(a) {
		t.Errorf("a later nonce %s does not sort after %s", prefix(later), prefix(a))
	}
	s := httptest.NewRequest(http.MethodPost, protocol.PathWait, nil)
	if err := protocol.SignSession(s, nil, &protocol.SessionGrant{Token: "t", Key: make([]byte, 32)}, at); err != nil {
		t.Fatal(err)
	}
	if prefix(s) != "075bcd15" {
		t.Errorf("session nonce prefix %s: want 075bcd15", prefix(s))
	}
}

// A key seen before is parsed once, but every request with it is still
// checked in full: its signature, its timestamp, its nonce; and each caller
// gets a Signed of its own.
func TestVerifyKnownKeyCheckedInFull(t *testing.T) {
	v := &protocol.Verifier{Nonces: protocol.NewNonceCache()}
	for _, k := range supportedKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			body := []byte(`{"state":"pending"}`)
			first, err := v.Verify(t.Context(), signedRequest(t, k.key, body, time.Now()), body)
			if err != nil {
				t.Fatal(err)
			}
			want := *first
			want.PublicKey = bytes.Clone(first.PublicKey)
			first.PublicKey[0] ^= 0xff // a caller's change reaches no other request
			first.Fingerprint = "changed"

			var r *http.Request
			for i := range 2 {
				r = signedRequest(t, k.key, body, time.Now())
				again, err := v.Verify(t.Context(), r, body)
				if err != nil {
					t.Fatal(err)
				}
				if again.Fingerprint != want.Fingerprint || again.KeyType != want.KeyType || !bytes.Equal(again.PublicKey, want.PublicKey) {
					t.Errorf("Verify %d with a known key = %+v, want %+v", i+2, again, want)
				}
				again.PublicKey[0] ^= 0xff
			}
			_, err = v.Verify(t.Context(), r, body)
			wantCode(t, err, gatehouse.EUNAUTHORIZED, "nonce already used")

			tampered := signedRequest(t, k.key, body, time.Now())
			_, err = v.Verify(t.Context(), tampered, []byte(`{"state":"approved"}`))
			wantCode(t, err, gatehouse.EUNAUTHORIZED, "signature does not verify")

			stale := signedRequest(t, k.key, body, time.Now().Add(-2*protocol.MaxSkew))
			_, err = v.Verify(t.Context(), stale, body)
			wantCode(t, err, gatehouse.EUNAUTHORIZED, "outside")
		})
	}
}

// Check proves the signature and leaves the nonce unused; only UseNonce
// records it, once, and a second use of the same request is a replay.
func TestCheckThenUseNonce(t *testing.T) {
	store := &recordingStore{}
	v := &protocol.Verifier{Nonces: store}
	key := edKey(t)
	r := signedRequest(t, key, []byte("signed"), time.Now())
	if _, err := v.Check(r, []byte("not what was signed")); err == nil {
		t.Fatal("Check accepted a wrong body")
	}
	c, err := v.Check(r, []byte("signed"))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if store.calls != 0 {
		t.Fatalf("Check used the nonce (%d calls); only UseNonce may", store.calls)
	}
	sig, err := c.UseNonce(context.Background())
	if err != nil || sig.Fingerprint != protocol.Fingerprint(spkiOf(t, key.Public())) || store.calls != 1 {
		t.Fatalf("UseNonce = %+v, %v after %d store calls; want the key's fingerprint after one", sig, err, store.calls)
	}

	v = &protocol.Verifier{Nonces: protocol.NewNonceCache()}
	r = signedRequest(t, key, nil, time.Now())
	first, err := v.Check(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := v.Check(r, nil)
	if err != nil {
		t.Fatalf("a second Check of an unused nonce: %v", err)
	}
	if _, err := first.UseNonce(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = again.UseNonce(context.Background())
	wantCode(t, err, gatehouse.EUNAUTHORIZED, "nonce", "replay")
}
