package protocol

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"
)

// supportedKeys ends every "wrong key" error so the operator knows what to use instead.
const supportedKeys = "supported: RSA 2048-4096 bits, ECDSA P-256, Ed25519"

// RSA sizes: below 2048 is too weak, above 4096 makes every verify a cheap DoS lever.
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// ParsePrivateKeyPEM reads the first PEM block of a device key file.
// Accepts RSA 2048-4096 (PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY"),
// ECDSA P-256 (SEC1 "EC PRIVATE KEY" or PKCS#8) and Ed25519 (PKCS#8).
// Anything else is an error saying what was found and what is supported.
// A leading "EC PARAMETERS" block is skipped, because `openssl ecparam
// -genkey` writes one unless told -noout.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, err := firstKeyBlock(data)
	if err != nil {
		return nil, err
	}
	key, err := parsePrivateKeyBlock(block)
	if err != nil {
		return nil, err
	}
	if err := checkPublicKey(key.Public()); err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	return key, nil
}

func firstKeyBlock(data []byte) (*pem.Block, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("device key: file is empty")
	}
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return nil, errors.New("device key: no PEM block found; want a PEM private key")
		}
		if block.Type != "EC PARAMETERS" {
			return block, nil
		}
		data = rest
	}
}

func parsePrivateKeyBlock(block *pem.Block) (crypto.Signer, error) {
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errors.New("device key: PEM is encrypted; the agent needs an unencrypted key")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		return signerOrErr(block.Type, key, err)
	case "EC PRIVATE KEY":
		key, err := x509.ParseECPrivateKey(block.Bytes)
		return signerOrErr(block.Type, key, err)
	case "PRIVATE KEY":
		return parsePKCS8(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("device key: PKCS#8 key is encrypted; the agent needs an unencrypted key")
	case "CERTIFICATE":
		return nil, errors.New("device key: PEM holds a certificate, not a private key")
	case "PUBLIC KEY", "RSA PUBLIC KEY":
		return nil, errors.New("device key: PEM holds a public key; the agent needs the private key")
	}
	return nil, fmt.Errorf("device key: PEM block %q is not a private key (%s)", block.Type, supportedKeys)
}

// signerOrErr gives the typed x509 parsers one result type and one error
// shape, without leaking a typed nil into a non-nil interface.
func signerOrErr[K crypto.Signer](blockType string, key K, err error) (crypto.Signer, error) {
	if err != nil {
		return nil, fmt.Errorf("device key: parse %s: %w", blockType, err)
	}
	return key, nil
}

func parsePKCS8(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if name := pkcs8Algorithm(der); name != "" {
			return nil, fmt.Errorf("device key: %s keys are not supported (%s)", name, supportedKeys)
		}
		return nil, fmt.Errorf("device key: parse PKCS#8: %w", err)
	}
	if signer, ok := key.(crypto.Signer); ok {
		return signer, nil
	}
	return nil, fmt.Errorf("device key: %s keys cannot sign (%s)", describeKey(key), supportedKeys)
}

// pkcs8Names covers the algorithms openssl makes that Go's parser rejects,
// so the operator reads "DSA" rather than an object identifier.
var pkcs8Names = map[string]string{
	"1.2.840.10040.4.1":     "DSA",
	"1.2.840.113549.1.1.10": "RSA-PSS",
	"1.3.101.111":           "X448",
	"1.3.101.113":           "Ed448",
}

func pkcs8Algorithm(der []byte) string {
	var info struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return ""
	}
	return pkcs8Names[info.Algorithm.Algorithm.String()]
}

// SignerPublicSPKI returns the DER SubjectPublicKeyInfo of a device key.
func SignerPublicSPKI(key crypto.Signer) ([]byte, error) {
	return MarshalPublicKey(key.Public())
}

// MarshalPublicKey returns the DER SubjectPublicKeyInfo of a supported key.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return spki, nil
}

// ParsePublicKey parses a DER SubjectPublicKeyInfo and checks it is a
// supported type and size. It returns the key and its KeyType.
func ParsePublicKey(spki []byte) (crypto.PublicKey, string, error) {
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, "", fmt.Errorf("public key: %w", err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, "", fmt.Errorf("public key: %w", err)
	}
	if err := checkCanonical(pub, spki); err != nil {
		return nil, "", err
	}
	return pub, KeyType(pub), nil
}

// checkCanonical refuses a second encoding of the same key, because the
// fingerprint of the bytes is the device identity: one key, one identity.
func checkCanonical(pub crypto.PublicKey, spki []byte) error {
	again, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	if !bytes.Equal(again, spki) {
		return errors.New("public key: SubjectPublicKeyInfo is not in canonical DER form")
	}
	return nil
}

// KeyType names a supported public key: "rsa-2048".."rsa-4096", "ecdsa-p256", "ed25519".
// It returns "" for anything unsupported.
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k != nil && k.N != nil && k.N.BitLen() >= minRSABits && k.N.BitLen() <= maxRSABits {
			return fmt.Sprintf("%s-%d", KeyRSA, k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k != nil && k.Curve == elliptic.P256() {
			return KeyECDSA
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return KeyEd25519
		}
	}
	return ""
}

func checkPublicKey(pub crypto.PublicKey) error {
	if KeyType(pub) == "" {
		return fmt.Errorf("%s keys are not supported (%s)", describeKey(pub), supportedKeys)
	}
	if k, ok := pub.(ed25519.PublicKey); ok {
		return checkEd25519Point(k)
	}
	return nil
}

// checkEd25519Point refuses Ed25519 keys that prove nothing. RFC 8032
// verifiers, Go's among them, accept a public key of small order (the
// identity and the other seven points of the 8-torsion): with such a key
// A, [8][k]A is the identity, so a fixed forged signature (R small order,
// S = 0) verifies for every message. An attacker could enroll such a key and
// anyone could then sign as that device. A point is small order exactly when
// multiplying it by the cofactor 8 gives the identity. Non-canonical
// encodings are refused too: the fingerprint of the bytes is the identity,
// so one point must have one encoding.
func checkEd25519Point(k ed25519.PublicKey) error {
	p, err := new(edwards25519.Point).SetBytes(k)
	if err != nil {
		return errors.New("Ed25519 key is not a point on the curve")
	}
	if !bytes.Equal(p.Bytes(), k) {
		return errors.New("Ed25519 key is not canonically encoded")
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errors.New("Ed25519 key is a small-order point, for which anyone can forge signatures")
	}
	return nil
}

// describeKey names any key for error messages, never showing key material.
func describeKey(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k != nil && k.N != nil {
			return fmt.Sprintf("RSA %d-bit", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k != nil && k.Curve != nil {
			return "ECDSA " + k.Curve.Params().Name
		}
	case *ecdh.PrivateKey:
		return fmt.Sprint(k.Curve())
	}
	return fmt.Sprintf("%T", key)
}

// Fingerprint is the device identity: lower-case hex SHA-256 of the SPKI DER.
func Fingerprint(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// PublicKeyPEM encodes an SPKI DER as a PEM "PUBLIC KEY" block (what Mender expects).
func PublicKeyPEM(spki []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
}
