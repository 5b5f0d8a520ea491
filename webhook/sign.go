package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	HeaderEvent     = "X-Gatehouse-Event"
	HeaderDelivery  = "X-Gatehouse-Delivery"
	HeaderTimestamp = "X-Gatehouse-Timestamp"
	HeaderSignature = "X-Gatehouse-Signature"
)

// DefaultTolerance is how far a delivery's timestamp may be from the
// receiver's clock. It has to cover clock skew and the time a request spends
// in flight, and is short enough that a captured delivery soon goes stale.
const DefaultTolerance = 5 * time.Minute

const signaturePrefix = "sha256="

// Errors returned by [Verify], wrapped with detail; test with errors.Is.
var (
	ErrNoSecret      = errors.New("webhook: empty secret")
	ErrMissingHeader = errors.New("webhook: missing header")
	ErrMalformed     = errors.New("webhook: malformed header")
	ErrStale         = errors.New("webhook: timestamp outside tolerance")
	ErrMismatch      = errors.New("webhook: signature mismatch")
)

// Sign returns the X-Gatehouse-Signature value for a body sent at timestamp
// (unix seconds): "sha256=" and the lower-case hex HMAC-SHA256 of
// timestamp + "." + body keyed with secret.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a received delivery: header holds the request's headers,
// body its raw bytes. It accepts exactly what [Sign] produces, provided the
// timestamp is within tolerance of now in either direction; a tolerance of
// zero or less means [DefaultTolerance]. It is the reference implementation
// of the recipe in the package documentation.
//
// The signature is checked before the timestamp, so ErrStale means an
// authentic delivery that arrived too late or a clock that is off.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		// An empty key would accept anything signed by anyone else with an empty key.
		return ErrNoSecret
	}
	ts, sec, err := timestampHeader(header)
	if err != nil {
		return err
	}
	got, err := signatureHeader(header)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, mac(secret, ts, body)) {
		return ErrMismatch
	}
	return checkAge(time.Unix(sec, 0), now, tolerance)
}

// timestampHeader returns the header as sent, which is what was signed, and
// its value. Only the canonical decimal form that Sign uses is accepted, so
// the text and the number cannot disagree.
func timestampHeader(h http.Header) (string, int64, error) {
	ts := h.Get(HeaderTimestamp)
	if ts == "" {
		return "", 0, fmt.Errorf("%w %s", ErrMissingHeader, HeaderTimestamp)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return "", 0, fmt.Errorf("%w %s: want unix seconds", ErrMalformed, HeaderTimestamp)
	}
	return ts, sec, nil
}

func signatureHeader(h http.Header) ([]byte, error) {
	v := h.Get(HeaderSignature)
	if v == "" {
		return nil, fmt.Errorf("%w %s", ErrMissingHeader, HeaderSignature)
	}
	hexSig, ok := strings.CutPrefix(v, signaturePrefix)
	sig, err := hex.DecodeString(hexSig)
	if !ok || err != nil || len(sig) != sha256.Size {
		return nil, fmt.Errorf("%w %s: want sha256=<64 hex digits>", ErrMalformed, HeaderSignature)
	}
	return sig, nil
}

// checkAge refuses timestamps in the future as well as old ones: a clock far
// ahead would otherwise let a delivery be replayed for longer than tolerance.
func checkAge(signed, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	// Compare instants, not now.Sub(signed): Sub saturates for absurd
	// timestamps, and negating the minimum duration stays negative.
	switch {
	case signed.Before(now.Add(-tolerance)):
		return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrStale, now.Sub(signed), tolerance)
	case signed.After(now.Add(tolerance)):
		return fmt.Errorf("%w: signed %s in the future, tolerance %s", ErrStale, signed.Sub(now), tolerance)
	}
	return nil
}
