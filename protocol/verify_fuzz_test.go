package protocol_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// fuzzSeedRequests are the requests every fuzz seed signs.
var fuzzSeedRequests = []struct {
	method, uri string
	body        []byte
}{
	{http.MethodPost, protocol.PathEnroll, []byte(`{"mac":"02:00:00:00:00:01","seal_key":"AAAA"}`)},
	{http.MethodPost, protocol.PathWait + "?x=1&y=%20", []byte(`{"state":"pending"}`)},
	{http.MethodGet, "/device/v1/renew", nil},
}

// signedSeed signs method uri body with key at fuzzNow and returns the four
// header values.
func signedSeed(f *testing.F, key crypto.Signer, method, uri string, body []byte) (k, ts, nonce, sig string) {
	req, err := http.NewRequest(method, "http://gatehouse.invalid"+uri, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := protocol.SignRequest(req, body, key, fuzzNow); err != nil {
		f.Fatal(err)
	}
	h := req.Header
	return h.Get(protocol.HeaderKey), h.Get(protocol.HeaderTimestamp), h.Get(protocol.HeaderNonce), h.Get(protocol.HeaderSignature)
}

// FuzzVerify feeds the signed-request parser arbitrary methods, URIs,
// bodies and signature headers. A request it accepts must carry a key that
// parses, a timestamp in canonical decimal within MaxSkew, a well-formed
// nonce and a signature that verifies over StringToSign; what it returns
// must describe that key; the key cache must not change a verdict; its
// nonce must be refused a second time; and the same request with one more
// byte of body must fail. A request it refuses gets a *gatehouse.Error of
// an authentication or validation code, no result, and a short message
// that does not repeat the headers.
func FuzzVerify(f *testing.F) {
	keys := []crypto.Signer{edKey(f), ecKey(f, elliptic.P256()), rsaKey(f, 2048)}
	for _, key := range keys {
		for _, r := range fuzzSeedRequests {
			k, ts, nonce, sig := signedSeed(f, key, r.method, r.uri, r.body)
			f.Add(r.method, r.uri, r.body, k, ts, nonce, sig)
		}
	}
	k, ts, nonce, sig := signedSeed(f, keys[0], http.MethodPost, protocol.PathAck, []byte(`{"name":"gw-1"}`))
	f.Add(http.MethodPost, protocol.PathAck, []byte(`{"name":"gw-2"}`), k, ts, nonce, sig)     // another body
	f.Add(http.MethodPost, protocol.PathAck, []byte(`{"name":"gw-1"}`), k, "+"+ts, nonce, sig) // non-canonical time
	f.Add(http.MethodPost, protocol.PathAck, []byte(`{"name":"gw-1"}`), k, ts, "ABCDEF"+nonce[6:], sig)
	f.Add(http.MethodPost, protocol.PathAck, []byte(nil), "", "", "", "")
	f.Add(http.MethodPost, protocol.PathAck, []byte(nil), "%%%", "1", "x", "====")

	// cached keeps its key cache from one input to the next, as a server
	// does; its nonces start afresh each time, as v's do.
	cached := &protocol.Verifier{Now: func() time.Time { return fuzzNow }}
	f.Fuzz(func(t *testing.T, method, uri string, body []byte, key, ts, nonce, sig string) {
		r, ok := fuzzRequest(method, uri)
		if !ok {
			return
		}
		setSigned(r, key, ts, nonce, sig)
		v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Now: func() time.Time { return fuzzNow }}
		cached.Nonces = protocol.NewNonceCache()
		c, err := v.Check(r, body)
		again, errAgain := cached.Check(r, body)
		if (err == nil) != (errAgain == nil) || err != nil && err.Error() != errAgain.Error() {
			t.Fatalf("the key cache changed the verdict: %v, then %v", err, errAgain)
		}
		if err != nil {
			checkRefused(t, c != nil, err, []byte(key), []byte(nonce), []byte(sig))
			return
		}
		checkAccepted(t, r, body, key, ts, nonce, sig)
		signed, err := c.UseNonce(context.Background())
		if err != nil {
			t.Fatalf("first use of the nonce: %v", err)
		}
		checkSigned(t, signed, key)
		if cs, err := again.UseNonce(context.Background()); err != nil || !reflect.DeepEqual(cs, signed) {
			t.Fatalf("cached verifier: %+v, %v; want %+v", cs, err, signed)
		}
		if _, err := v.Verify(context.Background(), r, body); gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
			t.Fatalf("replayed nonce: err = %v, want unauthorized", err)
		}
		if _, err := v.Check(r, append(bytes.Clone(body), 0)); err == nil {
			t.Fatal("a request with one more byte of body verified")
		}
	})
}

func fuzzRequest(method, uri string) (*http.Request, bool) {
	u, err := url.ParseRequestURI(uri)
	if err != nil || method == "" {
		return nil, false
	}
	return &http.Request{Method: method, URL: u, Header: http.Header{}}, true
}

func setSigned(r *http.Request, key, ts, nonce, sig string) {
	for name, v := range map[string]string{protocol.HeaderKey: key, protocol.HeaderTimestamp: ts,
		protocol.HeaderNonce: nonce, protocol.HeaderSignature: sig} {
		if v != "" {
			r.Header.Set(name, v)
		}
	}
}

// checkRefused is what every refusal must look like.
func checkRefused(t *testing.T, partial bool, err error, inputs ...[]byte) {
	t.Helper()
	if partial {
		t.Fatalf("refused with %v but returned a result too", err)
	}
	var gerr *gatehouse.Error
	if !errors.As(err, &gerr) || gerr.Code != gatehouse.EUNAUTHORIZED && gerr.Code != gatehouse.EINVALID {
		t.Fatalf("refusal %v (%T) is not an unauthorized or invalid *gatehouse.Error", err, err)
	}
	checkNoEcho(t, gerr.Message, inputs...)
}

var lowerHexNonce = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkAccepted proves an accepted request again from its parts, without
// the code under test: the key, the clock, the nonce and the signature.
func checkAccepted(t *testing.T, r *http.Request, body []byte, key, ts, nonce, sig string) {
	t.Helper()
	spki, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		t.Fatalf("accepted a key header that is not base64: %v", err)
	}
	pub, _, err := protocol.ParsePublicKey(spki)
	if err != nil {
		t.Fatalf("accepted a key that does not parse: %v", err)
	}
	checkClockAndNonce(t, ts, nonce)
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatalf("accepted a signature that is not base64: %v", err)
	}
	if !signatureVerifies(pub, protocol.StringToSign(r.Method, r.URL.RequestURI(), body, ts, nonce), raw) {
		t.Fatal("accepted a signature that does not verify")
	}
}

// checkClockAndNonce: an accepted timestamp is canonical decimal within
// MaxSkew of the clock, an accepted nonce 32 lower-case hex digits.
func checkClockAndNonce(t *testing.T, ts, nonce string) {
	t.Helper()
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		t.Fatalf("accepted timestamp %q, not canonical decimal", ts)
	}
	if d := sec - fuzzNow.Unix(); d > int64(protocol.MaxSkew.Seconds()) || d < -int64(protocol.MaxSkew.Seconds()) {
		t.Fatalf("accepted timestamp %d s from the clock", d)
	}
	if !lowerHexNonce.MatchString(nonce) {
		t.Fatalf("accepted nonce %q", nonce)
	}
}

// signatureVerifies is the oracle: written here again on purpose, beside
// protocol's verifySignature, so an accepted request is re-proved by code
// the fuzzer is not testing.
func signatureVerifies(pub crypto.PublicKey, msg, sig []byte) bool {
	digest := sha256.Sum256(msg)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}

// checkSigned: what Verify says about the sender is the header's key.
func checkSigned(t *testing.T, s *protocol.Signed, key string) {
	t.Helper()
	spki, _ := base64.StdEncoding.DecodeString(key)
	pub, keyType, _ := protocol.ParsePublicKey(spki)
	if !bytes.Equal(s.PublicKey, spki) || s.Fingerprint != protocol.Fingerprint(spki) || s.KeyType != keyType ||
		s.KeyType != protocol.KeyType(pub) || s.ViaSession {
		t.Fatalf("Signed = %+v, not the header's key (%s, %s)", s, protocol.Fingerprint(spki), keyType)
	}
}
