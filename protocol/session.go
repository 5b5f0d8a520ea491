package protocol

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// A device session lets a gateway's re-polls skip the public-key signature:
// after a request signed with its key, the server grants a short-lived
// session (a token and a key), and the gateway signs its next waits with an
// HMAC under that key instead. The timestamp and nonce rules are the same as
// for key-signed requests, checked against the same nonce store, so a
// replayed request is refused exactly as before; the token names the key's
// fingerprint under the server's MAC, so a session reads only its own
// gateway's state. The server keeps nothing per session: any replica that
// shares the session secret verifies it.
//
// A session may only wait: enrolling, acknowledging and renewing stay
// signed with the device key.

// HeaderSession carries the session token in place of HeaderKey; the
// signature header then holds base64 (std) of HMAC-SHA256 over
// StringToSign under the session key.
const HeaderSession = "X-Gatehouse-Session"

// SessionTTL is how long a session lasts.
const SessionTTL = 15 * time.Minute

// SessionGrant is a session as the server hands it to the gateway, in the
// answer to a request signed with the device key.
type SessionGrant struct {
	Token   string `json:"token"`
	Key     []byte `json:"key"`
	Expires int64  `json:"expires"` // unix seconds
}

const (
	sessionVersion = 1
	sessionTagSize = sha256.Size
	// version, expiry, fingerprint, tag
	sessionTokenSize = 1 + 8 + sha256.Size + sessionTagSize
)

// Sessions mints and opens device sessions under a server secret.
type Sessions struct {
	tags, keys keyedMAC
}

// NewSessions derives the session keys from secret, which every replica
// must share.
func NewSessions(secret []byte) *Sessions {
	return &Sessions{tags: keyedMAC{key: derive(secret, "gatehouse session token v1")},
		keys: keyedMAC{key: derive(secret, "gatehouse session key v1")}}
}

// keyedMAC is HMAC-SHA256 under one fixed key, its keyed states kept for
// reuse: every session-signed wait opens its token with two of them and
// every key-signed answer mints one with two more, and a fresh HMAC costs
// the key's two blocks and half a kilobyte each time.
type keyedMAC struct {
	key  []byte
	pool sync.Pool // of hash.Hash, keyed with key
}

func (k *keyedMAC) sum(data []byte) []byte {
	m, ok := k.pool.Get().(hash.Hash)
	if ok {
		m.Reset()
	} else {
		m = hmac.New(sha256.New, k.key)
	}
	m.Write(data)
	out := m.Sum(nil)
	k.pool.Put(m)
	return out
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Grant mints a session for the key with fingerprint fp (lower-case hex).
func (s *Sessions) Grant(fp string, now time.Time) (*SessionGrant, error) {
	raw, err := hex.DecodeString(fp)
	if err != nil || len(raw) != sha256.Size {
		return nil, unauthorized("cannot grant a session: malformed fingerprint")
	}
	expires := now.Add(SessionTTL).Unix()
	tok := make([]byte, 0, sessionTokenSize)
	tok = append(tok, sessionVersion)
	tok = binary.BigEndian.AppendUint64(tok, uint64(expires))
	tok = append(tok, raw...)
	tok = append(tok, s.tag(tok)...)
	return &SessionGrant{Token: base64.RawURLEncoding.EncodeToString(tok), Key: s.keyOf(tok), Expires: expires}, nil
}

func (s *Sessions) tag(body []byte) []byte { return s.tags.sum(body) }

// keyOf is the session key of a token: the server derives it again from the
// token at each request instead of storing it.
func (s *Sessions) keyOf(tok []byte) []byte { return s.keys.sum(tok) }

// open checks a token's MAC and expiry and returns its fingerprint and key.
func (s *Sessions) open(token string, now time.Time) (string, []byte, error) {
	tok, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(tok) != sessionTokenSize || tok[0] != sessionVersion {
		return "", nil, unauthorized("malformed %s header", HeaderSession)
	}
	body, tag := tok[:sessionTokenSize-sessionTagSize], tok[sessionTokenSize-sessionTagSize:]
	if !hmac.Equal(tag, s.tag(body)) {
		return "", nil, unauthorized("session not issued by this server; sign with the device key for a new one")
	}
	if exp := time.Unix(int64(binary.BigEndian.Uint64(body[1:9])), 0); !now.Before(exp) {
		return "", nil, unauthorized("session expired; sign with the device key for a new one")
	}
	return hex.EncodeToString(body[9:]), s.keyOf(tok), nil
}

// SignSession signs req (whose body is body) with a session: the session
// header, a timestamp, a fresh nonce and the HMAC.
func SignSession(req *http.Request, body []byte, g *SessionGrant, now time.Time) error {
	nonce, err := newNonce(now)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(HeaderSession, g.Token)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sessionMAC(g.Key, requestMethod(req), req.URL.RequestURI(), body, ts, nonce)))
	return nil
}

func sessionMAC(key []byte, method, uri string, body []byte, ts, nonce string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(StringToSign(method, uri, body, ts, nonce))
	return m.Sum(nil)
}

// HasSession reports whether r is signed with a session rather than a key.
func HasSession(r *http.Request) bool {
	return r.Header.Get(HeaderSession) != "" && r.Header.Get(HeaderKey) == ""
}

// VerifySession checks a session-signed request as Verify checks a
// key-signed one: token, timestamp, nonce format, MAC, then the nonce's
// single use. The Signed it returns has the fingerprint only, and
// ViaSession set.
func (v *Verifier) VerifySession(ctx context.Context, r *http.Request, body []byte) (*Signed, error) {
	c, err := v.CheckSession(r, body)
	if err != nil {
		return nil, err
	}
	return c.UseNonce(ctx)
}

// CheckSession is VerifySession up to the nonce's use, as Check is Verify.
func (v *Verifier) CheckSession(r *http.Request, body []byte) (*Checked, error) {
	if v.Sessions == nil {
		return nil, unauthorized("this server grants no sessions; sign with the device key")
	}
	h := signedHeaders{timestamp: r.Header.Get(HeaderTimestamp), nonce: r.Header.Get(HeaderNonce), signature: r.Header.Get(HeaderSignature)}
	if h.timestamp == "" || h.nonce == "" || h.signature == "" {
		return nil, unauthorized("unsigned request: a session request needs %s, %s and %s", HeaderTimestamp, HeaderNonce, HeaderSignature)
	}
	fp, key, err := v.Sessions.open(r.Header.Get(HeaderSession), v.now())
	if err != nil {
		return nil, err
	}
	ts, err := v.checkTimestamp(h.timestamp)
	if err != nil {
		return nil, err
	}
	if err := checkNonce(h.nonce); err != nil {
		return nil, err
	}
	mac, err := base64.StdEncoding.DecodeString(h.signature)
	if err != nil {
		return nil, unauthorized("malformed %s header: not standard base64", HeaderSignature)
	}
	want := sessionMAC(key, r.Method, r.URL.RequestURI(), body, h.timestamp, h.nonce)
	if !hmac.Equal(mac, want) {
		return nil, unauthorized("session signature does not verify: method, path, query, body, timestamp and nonce must be exactly what was signed")
	}
	return &Checked{v: v, signed: &Signed{Fingerprint: fp, ViaSession: true}, nonce: h.nonce, ts: ts}, nil
}
