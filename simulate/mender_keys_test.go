package simulate_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/simulate"
)

var keyKinds = []string{"rsa", "ecdsa", "ed25519"}

// deviceKey makes a device key of a kind Mender clients generate.
func deviceKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ecdsa":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signerPEM(t testing.TB, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// authRequest is a device's auth request, built and signed here with the
// primitives named in devices_v1.yaml, independently of MenderClient.
func authRequest(t testing.TB, k crypto.Signer, idData string) (body []byte, sig string) {
	t.Helper()
	body, err := json.Marshal(map[string]string{"id_data": idData, "pubkey": signerPEM(t, k)})
	if err != nil {
		t.Fatal(err)
	}
	return body, signBody(t, k, body)
}

func signBody(t testing.TB, k crypto.Signer, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(body)
	var raw []byte
	var err error
	switch key := k.(type) {
	case *rsa.PrivateKey:
		raw, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	case *ecdsa.PrivateKey:
		raw, err = ecdsa.SignASN1(rand.Reader, key, digest[:])
	case ed25519.PrivateKey:
		raw = ed25519.Sign(key, body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// statusOf reads the HTTP status a simulator error carries ("mender: 401 ...").
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	rest, ok := strings.CutPrefix(err.Error(), "mender: ")
	code, convErr := strconv.Atoi(rest[:min(3, len(rest))])
	if !ok || convErr != nil {
		return -1
	}
	return code
}

// wantStatus fails unless err carries status (0: no error).
func wantStatus(t testing.TB, what string, err error, status int) {
	t.Helper()
	if status == 0 && err != nil || status != 0 && statusOf(err) != status {
		t.Errorf("%s: err = %v, want status %d", what, err, status)
	}
}

// clock is a test clock: time moves only when the test says so.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(m *simulate.Mender) *clock {
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m.SetClock(c.Now)
	return c
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// pendingDevice has a device ask for a token once, as the real client does
// at boot, and returns the pending device it left behind.
func pendingDevice(t testing.TB, m *simulate.Mender, k crypto.Signer, mac string) (id, authSetID string) {
	t.Helper()
	body, sig := authRequest(t, k, `{"mac":"`+mac+`"}`)
	if _, err := m.AuthRequest(context.Background(), body, sig); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("first auth request: err = %v, want 401", err)
	}
	for _, d := range m.Devices() {
		if d.IdentityData["mac"] == mac {
			return d.ID, d.AuthSets[len(d.AuthSets)-1].ID
		}
	}
	t.Fatal(errors.New("the auth request left no device"))
	return "", ""
}
