package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hpke"
	"errors"
	"io/fs"
	"os"

	"gatehouse/protocol"
)

// identity is the device key and what the server derives from it.
type identity struct {
	key         crypto.Signer
	keyType     string
	fingerprint string
	code        string          // verification code the operator compares
	sealKey     hpke.PrivateKey // bundles are sealed to its public half
	certKey     *ecdsa.PrivateKey
	csr         string // PEM request for certKey, sent with every enroll
}

// loadIdentity reads the Mender device key. Its errors carry ExitKey and tell
// the operator what to do, since a missing key usually means the agent ran
// before the Mender client generated one.
func loadIdentity(path string) (*identity, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, exitErrorf(ExitKey, "device key %s not found: start the Mender client once so it generates its key, or pass --key PATH", path)
	case errors.Is(err, fs.ErrPermission):
		return nil, exitErrorf(ExitKey, "cannot read device key %s: %w (run the agent as root or make the key readable)", path, err)
	case err != nil:
		return nil, exitErrorf(ExitKey, "cannot read device key %s: %w", path, err)
	}
	key, err := protocol.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, exitErrorf(ExitKey, "device key %s: %w (supported: RSA 2048-4096, ECDSA P-256 and Ed25519 keys in PEM; pass --key to use another file)", path, err)
	}
	return newIdentity(path, key)
}

func newIdentity(path string, key crypto.Signer) (*identity, error) {
	spki, err := protocol.MarshalPublicKey(key.Public())
	if err != nil {
		return nil, exitErrorf(ExitKey, "device key %s: %w", path, err)
	}
	sealKey, err := protocol.DeriveSealKey(key)
	if err != nil {
		return nil, exitErrorf(ExitKey, "device key %s: derive seal key: %w", path, err)
	}
	certKey, csr, err := certRequest(key)
	if err != nil {
		return nil, exitErrorf(ExitKey, "device key %s: %w", path, err)
	}
	return &identity{
		key:         key,
		keyType:     protocol.KeyType(key.Public()),
		fingerprint: protocol.Fingerprint(spki),
		code:        protocol.VerificationCode(spki),
		sealKey:     sealKey,
		certKey:     certKey,
		csr:         csr,
	}, nil
}

// certRequest derives the certificate key and its CSR. Both follow from the
// device key, so a server in sign mode gets the same request however often
// the agent restarts, and the key to go with the certificate needs no file
// of its own until the certificate arrives.
func certRequest(key crypto.Signer) (*ecdsa.PrivateKey, string, error) {
	certKey, err := protocol.DeriveCertKey(key)
	if err != nil {
		return nil, "", err
	}
	csr, err := protocol.CreateCSR(certKey)
	if err != nil {
		return nil, "", err
	}
	return certKey, csr, nil
}
