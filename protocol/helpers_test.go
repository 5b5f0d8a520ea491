package protocol_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"gatehouse"
)

// testKey is one supported key type with its expected KeyType.
type testKey struct {
	name    string
	keyType string
	key     crypto.Signer
}

var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]crypto.Signer{}
)

// cachedKey generates each key once per test binary; RSA 4096 under -race is slow.
func cachedKey(t testing.TB, name string, gen func() (crypto.Signer, error)) crypto.Signer {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	if k, ok := keyCache[name]; ok {
		return k
	}
	k, err := gen()
	if err != nil {
		t.Fatalf("generate %s: %v", name, err)
	}
	keyCache[name] = k
	return k
}

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	return cachedKey(t, fmt.Sprintf("rsa-%d", bits), func() (crypto.Signer, error) {
		return rsa.GenerateKey(rand.Reader, bits)
	}).(*rsa.PrivateKey)
}

func ecKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	return cachedKey(t, "ecdsa-"+curve.Params().Name, func() (crypto.Signer, error) {
		return ecdsa.GenerateKey(curve, rand.Reader)
	}).(*ecdsa.PrivateKey)
}

func edKey(t testing.TB) ed25519.PrivateKey {
	return cachedKey(t, "ed25519", func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}).(ed25519.PrivateKey)
}

// supportedKeys is one key of every accepted type and size.
func supportedKeys(t testing.TB) []testKey {
	return []testKey{
		{"rsa-2048", "rsa-2048", rsaKey(t, 2048)},
		{"rsa-3072", "rsa-3072", rsaKey(t, 3072)},
		{"rsa-4096", "rsa-4096", rsaKey(t, 4096)},
		{"ecdsa-p256", "ecdsa-p256", ecKey(t, elliptic.P256())},
		{"ed25519", "ed25519", edKey(t)},
	}
}

func pemPKCS8(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pemPKCS1(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

func pemSEC1(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func spkiOf(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// wantCode fails unless err is a *gatehouse.Error with code whose message
// contains every one of wantText.
func wantCode(t *testing.T, err error, code string, wantText ...string) {
	t.Helper()
	var gerr *gatehouse.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error = %v (%T), want *gatehouse.Error", err, err)
	}
	if gerr.Code != code {
		t.Fatalf("code = %q (%v), want %q", gerr.Code, err, code)
	}
	for _, s := range wantText {
		if !strings.Contains(gerr.Message, s) {
			t.Errorf("message %q does not mention %q", gerr.Message, s)
		}
	}
}
