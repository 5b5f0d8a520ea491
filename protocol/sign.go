package protocol

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// signVersion is the first line of every signed string, so a future scheme
// can never be confused with this one.
const signVersion = "gatehouse-v1"

// nonceBytes is a nonce's length; hex doubles it to 32 characters.
const nonceBytes = 16

// nonceTimeBytes of a nonce are the signing time's nanoseconds within its
// second, big-endian, and the rest is random (96 bits). The server keeps
// nonces ordered by expiry (from the signed second) and then by nonce, so
// this agent's nonces land at the end of that order, in the page being
// filled, instead of at random among the second's rows: a commit of eight
// random nonces wrote about ten pages to the store's log, of eight
// time-ordered ones about four (SQLite rebalancing the last leaves). The
// server needs nothing of it; any 16 random bytes are as valid.
const nonceTimeBytes = 4

// SignRequest signs req (whose body is body) with the device key, setting the
// four signature headers. The signed string is StringToSign.
func SignRequest(req *http.Request, body []byte, key crypto.Signer, now time.Time) error {
	spki, err := SignerPublicSPKI(key)
	if err != nil {
		return err
	}
	nonce, err := newNonce(now)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	sig, err := signMessage(key, StringToSign(requestMethod(req), req.URL.RequestURI(), body, ts, nonce))
	if err != nil {
		return err
	}
	req.Header.Set(HeaderKey, base64.StdEncoding.EncodeToString(spki))
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return nil
}

// requestMethod mirrors net/http, which sends an empty client Method as GET;
// the server would otherwise verify a different string than was signed.
func requestMethod(req *http.Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

func newNonce(now time.Time) (string, error) {
	b := make([]byte, nonceBytes)
	binary.BigEndian.PutUint32(b, uint32(now.Nanosecond()))
	if _, err := rand.Read(b[nonceTimeBytes:]); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// StringToSign is the canonical message covered by a request signature:
// "gatehouse-v1\n" + method + "\n" + request URI (path and query) + "\n" +
// hex(sha256(body)) + "\n" + timestamp + "\n" + nonce.
func StringToSign(method, requestURI string, body []byte, timestamp, nonce string) []byte {
	sum := sha256.Sum256(body)
	parts := []string{signVersion, method, requestURI, hex.EncodeToString(sum[:]), timestamp, nonce}
	return []byte(strings.Join(parts, "\n"))
}

// signMessage picks the one scheme per key type that verifySignature accepts.
// It goes through crypto.Signer so keys held in hardware work too.
func signMessage(key crypto.Signer, msg []byte) ([]byte, error) {
	var sig []byte
	var err error
	switch key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *rsa.PublicKey, *ecdsa.PublicKey:
		digest := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("sign request: %w", checkPublicKey(key.Public()))
	}
	if err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	return sig, nil
}

// verifySignature enforces exactly one scheme per key type: RSA PKCS#1 v1.5
// and ECDSA ASN.1 over SHA-256, Ed25519 over the message itself (so only
// the first two hash it).
func verifySignature(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		digest := sha256.Sum256(msg)
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, digest[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}
