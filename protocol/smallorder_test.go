package protocol_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// badEd25519Keys are Ed25519 public keys no device may enroll with: the
// eight small-order points (canonical encodings), non-canonical encodings
// and a value that is no point at all.
var badEd25519Keys = []struct {
	name, hex, want string
}{
	{"identity", "0100000000000000000000000000000000000000000000000000000000000000", "small-order"},
	{"order 2", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "small-order"},
	{"order 4 +x", "0000000000000000000000000000000000000000000000000000000000000000", "small-order"},
	{"order 4 -x", "0000000000000000000000000000000000000000000000000000000000000080", "small-order"},
	{"order 8 a", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", "small-order"},
	{"order 8 b", "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", "small-order"},
	{"order 8 c", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "small-order"},
	{"order 8 d", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "small-order"},
	// y = p+1 encodes the identity a second time.
	{"identity y+p", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "canonical"},
	// x = 0 with the sign bit set is "-0", the identity again.
	{"identity -0", "0100000000000000000000000000000000000000000000000000000000000080", "canonical"},
	{"not a point", "0200000000000000000000000000000000000000000000000000000000000000", "not a point"},
}

func edSPKI(t *testing.T, hexKey string) []byte {
	t.Helper()
	raw, err := hex.DecodeString(hexKey)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		t.Fatalf("test setup: bad hex key %q", hexKey)
	}
	spki, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spki
}

func TestParsePublicKeyRefusesDegenerateEd25519(t *testing.T) {
	for _, k := range badEd25519Keys {
		t.Run(k.name, func(t *testing.T) {
			spki := edSPKI(t, k.hex)
			_, _, err := protocol.ParsePublicKey(spki)
			if err == nil || !strings.Contains(err.Error(), k.want) {
				t.Fatalf("ParsePublicKey err = %v, want one mentioning %q", err, k.want)
			}
			raw, _ := hex.DecodeString(k.hex)
			if _, err := protocol.MarshalPublicKey(ed25519.PublicKey(raw)); err == nil {
				t.Error("MarshalPublicKey accepted the key")
			}
		})
	}
}

// forgedRequest signs nothing: with the identity as public key, R = identity
// and S = 0 satisfy the RFC 8032 equation for every message.
func forgedRequest(t *testing.T, body string) *http.Request {
	t.Helper()
	identity, _ := hex.DecodeString(badEd25519Keys[0].hex)
	sig := append(append([]byte{}, identity...), make([]byte, 32)...)
	if !ed25519.Verify(identity, []byte(body), sig) {
		t.Fatal("test setup: the forged signature should verify with crypto/ed25519")
	}
	r := httptest.NewRequest(http.MethodPost, protocol.PathEnroll, strings.NewReader(body))
	r.Header.Set(protocol.HeaderKey, base64.StdEncoding.EncodeToString(edSPKI(t, badEd25519Keys[0].hex)))
	r.Header.Set(protocol.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
	r.Header.Set(protocol.HeaderNonce, strings.Repeat("ab", 16))
	r.Header.Set(protocol.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return r
}

func TestVerifyRefusesForgeableKey(t *testing.T) {
	store := &recordingStore{}
	v := &protocol.Verifier{Nonces: store}
	body := `{"mac":"02:00:00:00:00:01"}`
	_, err := v.Verify(context.Background(), forgedRequest(t, body), []byte(body))
	wantCode(t, err, gatehouse.EINVALID, protocol.HeaderKey, "small-order")
	if store.calls != 0 {
		t.Errorf("a refused key used %d nonces; it must change nothing", store.calls)
	}
}

func TestParsePublicKeyAcceptsRealEd25519(t *testing.T) {
	for range 32 {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		spki, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := protocol.ParsePublicKey(spki); err != nil {
			t.Fatalf("ParsePublicKey(%x): %v", []byte(pub), err)
		}
	}
}
