package protocol

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
)

// certKeyInfo separates the certificate key from the seal key derived from
// the same device key; changing it orphans every certificate already signed.
const certKeyInfo = "gatehouse certificate key v1"

// PendingCommonName is the subject of every CSR the agent sends. The agent
// does not know its name before approval; the PKI role must take the
// approved name from the request (use_csr_common_name=false), not this.
const PendingCommonName = "gatehouse-pending"

// certKeyAttempts bounds the re-derivations. Each fails with probability
// about 2^-32 (scalar zero or not below the P-256 order), so 4 is plenty.
const certKeyAttempts = 4

// DeriveCertKey derives the device's certificate key, an ECDSA P-256 key,
// from its signing key. Being a function of the device key, it survives a
// power cut between sending the CSR and writing the key file without any
// extra state on disk, and the Mender key itself is never put into a
// certificate that other services see.
func DeriveCertKey(key crypto.Signer) (*ecdsa.PrivateKey, error) {
	if err := checkPublicKey(key.Public()); err != nil {
		return nil, fmt.Errorf("certificate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certificate key: device key must be exportable: %w", err)
	}
	defer clear(der)
	for i := range certKeyAttempts {
		if k, err := certKeyCandidate(der, i); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("certificate key: no valid P-256 scalar derived")
}

func certKeyCandidate(der []byte, attempt int) (*ecdsa.PrivateKey, error) {
	info := certKeyInfo
	if attempt > 0 {
		info = fmt.Sprintf("%s %d", certKeyInfo, attempt)
	}
	scalar, err := hkdf.Key(sha256.New, der, nil, info, 32)
	if err != nil {
		return nil, err
	}
	defer clear(scalar)
	return ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
}

// CreateCSR returns a PEM CERTIFICATE REQUEST for key with subject CN
// PendingCommonName. The signature is deterministic (RFC 6979), so a
// restarted agent sends byte-for-byte the same CSR.
func CreateCSR(key *ecdsa.PrivateKey) (string, error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: PendingCommonName}}
	// A nil random source is what selects RFC 6979 signing.
	der, err := x509.CreateCertificateRequest(nil, tmpl, key)
	if err != nil {
		return "", fmt.Errorf("certificate request: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}
