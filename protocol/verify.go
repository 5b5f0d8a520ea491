package protocol

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gatehouse"
)

// NonceStore remembers nonces until they expire. UseNonce returns an error
// wrapping ErrReplay when the nonce was already used by that key.
type NonceStore interface {
	UseNonce(ctx context.Context, fingerprint, nonce string, expires time.Time) error
}

// Signed is what a verified request proves about its sender.
type Signed struct {
	PublicKey   []byte // SPKI DER; empty for a session
	Fingerprint string
	KeyType     string
	// ViaSession says the request was signed with a session (see
	// Sessions) rather than with the key itself.
	ViaSession bool
}

// Verifier checks signed device requests. The zero value with Nonces set
// is ready to use.
type Verifier struct {
	Nonces NonceStore
	// Sessions, if set, verifies session-signed requests (VerifySession).
	Sessions *Sessions
	Now      func() time.Time // nil means time.Now

	keys keyCache
}

// signedHeaders are the raw header values of one request.
type signedHeaders struct {
	key, timestamp, nonce, signature string
}

// Verify checks the signature headers of r against body. Errors are
// *gatehouse.Error with code EUNAUTHORIZED (bad/missing signature, stale
// timestamp, replayed nonce) or EINVALID (malformed or unsupported key).
// A failing NonceStore is passed through wrapped, so it reads as internal
// (or as whatever *gatehouse.Error the store returned).
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (*Signed, error) {
	c, err := v.Check(r, body)
	if err != nil {
		return nil, err
	}
	return c.UseNonce(ctx)
}

// Checked is a request whose signature verified and whose nonce is not
// used yet: it proves nothing until UseNonce has recorded the nonce. The
// split lets a server verify (public-key work, no database) before it
// queues for the database, and record the nonce once its turn comes.
type Checked struct {
	v      *Verifier
	signed *Signed
	nonce  string
	ts     time.Time
}

// UseNonce records the request's nonce, refusing a replay, and returns
// what the request proves once it is recorded.
func (c *Checked) UseNonce(ctx context.Context) (*Signed, error) {
	if err := c.v.useNonce(ctx, c.signed.Fingerprint, c.nonce, c.ts); err != nil {
		return nil, err
	}
	return c.signed, nil
}

// Check is Verify up to the nonce's use: the headers, the timestamp and
// the signature.
func (v *Verifier) Check(r *http.Request, body []byte) (*Checked, error) {
	h, err := readHeaders(r)
	if err != nil {
		return nil, err
	}
	signed, pub, cached := v.keys.get(h.key)
	if !cached {
		if signed, pub, err = parseKeyHeader(h.key); err != nil {
			return nil, err
		}
	}
	ts, err := v.checkTimestamp(h.timestamp)
	if err != nil {
		return nil, err
	}
	if err := checkNonce(h.nonce); err != nil {
		return nil, err
	}
	msg := StringToSign(r.Method, r.URL.RequestURI(), body, h.timestamp, h.nonce)
	if err := checkSignature(pub, msg, h.signature); err != nil {
		return nil, err
	}
	if !cached {
		v.keys.put(h.key, signed, pub)
	}
	// Only now, with the signature proven, may the request take cache space.
	return &Checked{v: v, signed: signed, nonce: h.nonce, ts: ts}, nil
}

func readHeaders(r *http.Request) (signedHeaders, error) {
	h := signedHeaders{
		key:       r.Header.Get(HeaderKey),
		timestamp: r.Header.Get(HeaderTimestamp),
		nonce:     r.Header.Get(HeaderNonce),
		signature: r.Header.Get(HeaderSignature),
	}
	var missing []string
	for _, name := range []string{HeaderKey, HeaderTimestamp, HeaderNonce, HeaderSignature} {
		if r.Header.Get(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return h, unauthorized("unsigned request: missing header %s", strings.Join(missing, ", "))
	}
	return h, nil
}

func parseKeyHeader(value string) (*Signed, crypto.PublicKey, error) {
	spki, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "malformed %s header: not standard base64", HeaderKey)
	}
	pub, keyType, err := ParsePublicKey(spki)
	if err != nil {
		return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "unusable key in %s header: %v", HeaderKey, err)
	}
	return &Signed{PublicKey: spki, Fingerprint: Fingerprint(spki), KeyType: keyType}, pub, nil
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

func (v *Verifier) checkTimestamp(value string) (time.Time, error) {
	sec, err := strconv.ParseInt(value, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != value {
		return time.Time{}, unauthorized("malformed %s header: want unix seconds in decimal", HeaderTimestamp)
	}
	ts := time.Unix(sec, 0)
	if skew := ts.Sub(v.now()); skew > MaxSkew || skew < -MaxSkew {
		return time.Time{}, unauthorized("request timestamp is %s the server clock, outside ±%s; check the device clock",
			describeSkew(skew), MaxSkew)
	}
	return ts, nil
}

func describeSkew(skew time.Duration) string {
	if skew < 0 {
		return (-skew).Round(time.Second).String() + " behind"
	}
	return skew.Round(time.Second).String() + " ahead of"
}

func checkNonce(nonce string) error {
	ok := len(nonce) == 2*nonceBytes
	for _, c := range nonce {
		ok = ok && (c >= '0' && c <= '9' || c >= 'a' && c <= 'f')
	}
	if !ok {
		return unauthorized("malformed %s header: want %d lower-case hex characters", HeaderNonce, 2*nonceBytes)
	}
	return nil
}

func checkSignature(pub crypto.PublicKey, msg []byte, value string) error {
	sig, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return unauthorized("malformed %s header: not standard base64", HeaderSignature)
	}
	if !verifySignature(pub, msg, sig) {
		return unauthorized("signature does not verify: method, path, query, body, timestamp and nonce must be exactly what was signed, with the key in %s", HeaderKey)
	}
	return nil
}

// useNonce keeps each nonce at least as long as its timestamp stays within
// MaxSkew of the clock, with room for clocks that disagree.
func (v *Verifier) useNonce(ctx context.Context, fingerprint, nonce string, ts time.Time) error {
	if v.Nonces == nil {
		return errors.New("protocol: Verifier has no NonceStore; refusing to accept replays")
	}
	err := v.Nonces.UseNonce(ctx, fingerprint, nonce, ts.Add(2*MaxSkew))
	if errors.Is(err, ErrReplay) {
		return unauthorized("nonce already used: replayed request refused")
	}
	if err != nil {
		return fmt.Errorf("protocol: record nonce: %w", err)
	}
	return nil
}

// keyCache remembers parsed key headers: a gateway signs every request
// with one key, and parsing it (DER, the curve point's checks, the
// fingerprint's hash) is work done once per key rather than per request.
// Only keys that have just verified a signature are kept, and the cache is
// emptied when full, so a flood of fresh keys costs memory for at most
// maxCachedKeys of them.
type keyCache struct {
	mu sync.Mutex
	m  map[string]cachedKey
}

type cachedKey struct {
	signed Signed
	pub    crypto.PublicKey
}

const maxCachedKeys = 8192

// get returns a copy of the cached Signed, so a caller changing it changes
// no other request's.
func (c *keyCache) get(header string) (*Signed, crypto.PublicKey, bool) {
	c.mu.Lock()
	k, ok := c.m[header]
	c.mu.Unlock()
	if !ok {
		return nil, nil, false
	}
	signed := k.signed
	signed.PublicKey = bytes.Clone(k.signed.PublicKey)
	return &signed, k.pub, true
}

func (c *keyCache) put(header string, signed *Signed, pub crypto.PublicKey) {
	k := cachedKey{signed: *signed, pub: pub}
	k.signed.PublicKey = bytes.Clone(signed.PublicKey)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[string]cachedKey)
	}
	c.m[header] = k
}

func unauthorized(format string, args ...any) *gatehouse.Error {
	return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, format, args...)
}
