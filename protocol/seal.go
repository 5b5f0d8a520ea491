package protocol

import (
	"crypto"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// Domain-separation labels; changing either makes old bundles unreadable.
const (
	sealKeyInfo    = "gatehouse seal key v1"
	sealInfoPrefix = "gatehouse bundle v1 "
)

// The one HPKE suite gatehouse uses: DHKEM(X25519), HKDF-SHA256, ChaCha20-Poly1305.
var (
	sealKEM  = hpke.DHKEM(ecdh.X25519())
	sealKDF  = hpke.HKDFSHA256()
	sealAEAD = hpke.ChaCha20Poly1305()
)

// DeriveSealKey derives the device's HPKE key pair (DHKEM X25519) from its
// signing key, so a restarted agent can open a bundle sealed before a power cut
// without keeping extra state.
func DeriveSealKey(key crypto.Signer) (hpke.PrivateKey, error) {
	if err := checkPublicKey(key.Public()); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: device key must be exportable: %w", err)
	}
	defer clear(der)
	ikm, err := hkdf.Key(sha256.New, der, nil, sealKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	defer clear(ikm)
	priv, err := sealKEM.DeriveKeyPair(ikm)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return priv, nil
}

// sealProbe is a fixed X25519 private key used only to test seal keys; see
// CheckSealKey. Its clamped scalar is no multiple of the large prime order of
// the curve or its twist, so only a low-order point gives a zero result.
var sealProbe = mustX25519Key(sha256.Sum256([]byte("gatehouse seal key probe v1")))

func mustX25519Key(b [32]byte) *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(b[:])
	if err != nil {
		panic(err)
	}
	return k
}

// CheckSealKey reports whether sealPublicKey can be sealed to. Any 32 bytes
// parse as an X25519 public key, but for the all-zero key and the other
// low-order points (and their non-canonical encodings) X25519(k, pub) is all
// zero for every k: HPKE then refuses to seal, so a device enrolled with
// such a key would be approved into steps that fail forever. Clamped
// scalars are multiples of the cofactor 8, so one probe with any such
// scalar gives zero exactly for those points.
func CheckSealKey(sealPublicKey []byte) error {
	pub, err := ecdh.X25519().NewPublicKey(sealPublicKey)
	if err != nil {
		return fmt.Errorf("seal key is not a %d-byte X25519 public key", 32)
	}
	if _, err := sealProbe.ECDH(pub); err != nil {
		return errors.New("seal key is a low-order X25519 point (all-zero shared secret); nothing can be sealed to it")
	}
	return nil
}

// Seal encrypts one secret bundle field to the device's HPKE public key
// (DHKEM X25519, HKDF-SHA256, ChaCha20-Poly1305). The field name is bound in
// the HPKE info so a ciphertext cannot be moved to another field.
func Seal(sealPublicKey []byte, field string, plaintext []byte) ([]byte, error) {
	if field == "" {
		return nil, errors.New("seal: empty field name")
	}
	pub, err := sealKEM.NewPublicKey(sealPublicKey)
	if err != nil {
		return nil, fmt.Errorf("seal %s: seal key is not a %d-byte X25519 public key: %w", field, 32, err)
	}
	ct, err := hpke.Seal(pub, sealKDF, sealAEAD, sealInfo(field), plaintext)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", field, err)
	}
	return ct, nil
}

// Open decrypts a field sealed with Seal.
func Open(key hpke.PrivateKey, field string, ciphertext []byte) ([]byte, error) {
	pt, err := hpke.Open(key, sealKDF, sealAEAD, sealInfo(field), ciphertext)
	if err != nil {
		return nil, fmt.Errorf("open %s: wrong key, wrong field or damaged ciphertext: %w", field, err)
	}
	return pt, nil
}

func sealInfo(field string) []byte {
	return []byte(sealInfoPrefix + field)
}
