package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// ServerSecretSize is the length of the secret verification codes are keyed with.
const ServerSecretSize = 32

// verificationDomain separates the code's MAC from any other use of the
// secret, so a code can never be replayed as some other keyed value.
const verificationDomain = "gatehouse verification code v2\x00"

// VerificationCode is the 6-digit code the operator compares between the
// server's pending row and the gateway's console: an HMAC-SHA256 of the key
// fingerprint under the server's secret.
//
// Keying it is what makes the comparison mean something. A code that anyone
// can compute from a key (as v1's plain hash was) lets an attacker who sees
// a gateway's code grind keys offline until one matches, about a million
// tries, and enroll that key beside the real one. Without the secret the
// only way to learn a key's code is to enroll it, one request per guess,
// which the server sees, shows in the pending queue (flagged when the code
// matches another's) and can rate-limit per source. A million enrollments
// cannot pass unnoticed the way a million local hashes do.
func VerificationCode(secret []byte, fingerprint string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(verificationDomain))
	m.Write([]byte(fingerprint))
	n := binary.BigEndian.Uint64(m.Sum(nil)[:8])
	// 2^64 mod 10^6 is tiny against 2^64, so the modulo bias is negligible.
	return fmt.Sprintf("%06d", n%1_000_000)
}

// FormatCode writes a verification code the one way people see it, on the
// gateway's console, in the CLI and in the page: two groups of three
// ("557 546"), easier to read aloud and compare than six digits in a row.
// Anything that is not six characters is returned unchanged, so an empty or
// unexpected code shows as it is rather than as a mangled one.
func FormatCode(code string) string {
	if len(code) != 6 {
		return code
	}
	return code[:3] + " " + code[3:]
}

// NormalizeCode undoes FormatCode and any other spacing a person types
// ("557 546", "557-546", " 557546 "), for searching by code.
func NormalizeCode(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			out = append(out, c)
		} else if c != ' ' && c != '-' && c != '\t' {
			return ""
		}
	}
	return string(out)
}
