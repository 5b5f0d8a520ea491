package provision

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns a short random id an operator can type: 12 characters of
// lower-case base32, 60 random bits.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return strings.ToLower(idEncoding.EncodeToString(b))[:12]
}

// tokenPrefix marks gatehouse API tokens so secret scanners and people can
// recognise one.
const tokenPrefix = "gat_"

func newTokenSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is enough for tokens: they carry 256 random bits, so a slow
// password hash would add nothing but latency to every API call.
func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
