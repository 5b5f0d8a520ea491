// Package keytest makes device identities for tests and benchmarks that
// enroll through the service directly, without HTTP or a signature.
package keytest

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"gatehouse/protocol"
)

// Ed25519 is a fresh Ed25519 device key as the service sees it once a
// signed request has been checked, and the public half of the sealing key
// the agent derives from it (an EnrollRequest's SealKey).
func Ed25519(t testing.TB) (*protocol.Signed, []byte) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := protocol.MarshalPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	seal, err := protocol.DeriveSealKey(k)
	if err != nil {
		t.Fatal(err)
	}
	sig := &protocol.Signed{PublicKey: spki, Fingerprint: protocol.Fingerprint(spki), KeyType: protocol.KeyEd25519}
	return sig, seal.PublicKey().Bytes()
}
