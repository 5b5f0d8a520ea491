package sso

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// FlowTTL is how long a sign-in may take from the login button to the
// callback.
const FlowTTL = 10 * time.Minute

// flowCookie carries one sign-in's secrets from Begin to Finish in the
// browser that started it.
const flowCookie = "gatehouse_sso"

// flow is what Begin keeps for Finish: the state the callback must bring
// back, the nonce the ID token must carry and the PKCE verifier.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"` // unix seconds
}

func newFlow(now time.Time, verifier string) flow {
	return flow{State: randomString(), Nonce: randomString(), Verifier: verifier, Expires: now.Add(FlowTTL).Unix()}
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sealer encrypts flows into cookie values, so the browser holds them but
// can neither read the verifier nor forge or extend a flow.
type sealer struct {
	aead cipher.AEAD
	aad  []byte // binds a cookie to one issuer and client
}

func newSealer(key []byte, c Config) (*sealer, error) {
	if len(key) < 32 {
		return nil, errors.New("oidc: the flow key must have at least 32 bytes")
	}
	k, err := hkdf.Key(sha256.New, key, nil, "gatehouse oidc flow cookie", 32)
	if err != nil {
		return nil, fmt.Errorf("oidc: derive flow key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("oidc: flow cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("oidc: flow cipher: %w", err)
	}
	return &sealer{aead: aead, aad: []byte(c.Issuer + "\x00" + c.ClientID)}, nil
}

func (s *sealer) seal(f flow) string {
	plain, _ := json.Marshal(f)
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, s.aad))
}

var errNoFlow = errors.New("no valid sign-in flow")

// open returns the flow in value if it is intact and not expired.
func (s *sealer) open(value string, now time.Time) (flow, error) {
	var f flow
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return f, errNoFlow
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], s.aad)
	if err != nil || json.Unmarshal(plain, &f) != nil || f.State == "" || now.Unix() >= f.Expires {
		return flow{}, errNoFlow
	}
	return f, nil
}

// sameSecret compares two secrets in constant time.
func sameSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// usedStates remembers the states of sign-ins that finished until their
// flows expire, so a finished flow cannot be replayed on this server even
// with its cookie copied. Only finished sign-ins are kept: each took a
// real login at the provider, so nobody can fill this up cheaply.
type usedStates struct {
	mu   sync.Mutex
	seen map[[32]byte]int64 // hash of the state → its flow's expiry
}

func (u *usedStates) used(state string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.seen[sha256.Sum256([]byte(state))]
	return ok
}

// claim marks f's state used and says whether it was free until now.
func (u *usedStates) claim(f flow, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, exp := range u.seen {
		if now.Unix() >= exp {
			delete(u.seen, k)
		}
	}
	h := sha256.Sum256([]byte(f.State))
	if _, ok := u.seen[h]; ok {
		return false
	}
	if u.seen == nil {
		u.seen = map[[32]byte]int64{}
	}
	u.seen[h] = f.Expires
	return true
}
