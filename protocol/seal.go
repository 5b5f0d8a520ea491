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
