package protocol_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// fuzzNow is the server clock of every fuzz target here: the seeds are
// signed at it, so a seed still verifies when the corpus is replayed on
// another day, and a mutated timestamp is judged against a fixed time.
var fuzzNow = time.Unix(1_800_000_000, 0)

// maxErrorLen bounds every error message a parser returns: a message that
// grows with its input is one that echoes it.
const maxErrorLen = 600

// echoMin is the shortest input value an error must not repeat: shorter
// ones (a "1", a "POST") may appear in a fixed message by chance.
const echoMin = 16

// checkNoEcho fails when msg is too long or repeats one of values, raw,
// in hex or in base64, as a secret would be repeated by a careless
// fmt.Errorf("%v", input).
func checkNoEcho(t *testing.T, msg string, values ...[]byte) {
	t.Helper()
	if len(msg) > maxErrorLen {
		t.Fatalf("error message is %d bytes long, more than %d: it echoes its input", len(msg), maxErrorLen)
	}
	for _, v := range values {
		if len(v) < echoMin {
			continue
		}
		for _, form := range []string{string(v), hex.EncodeToString(v), base64.StdEncoding.EncodeToString(v)} {
			if strings.Contains(msg, form[:echoMin]) && strings.Contains(msg, form) {
				t.Fatalf("error message %q repeats an input value", msg)
			}
		}
	}
}

// seedBytes is deterministic key material for fuzz seeds that must open in
// every fuzz worker process: a key generated at random would differ in
// each, and a bundle sealed in one would open in no other.
func seedBytes(label string) []byte {
	sum := sha256.Sum256([]byte("gatehouse fuzz seed: " + label))
	return sum[:]
}
