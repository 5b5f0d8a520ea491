package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/hpke"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"gatehouse/protocol"
)

// Waiting for the key: how often to look, and how often to say we still wait.
const (
	keyPollInterval = time.Second
	keyWaitLogEvery = 5 * time.Minute
)

// identity is the device key and what follows from it. The verification
// code does not: only the server can compute it (see enroll).
type identity struct {
	key         crypto.Signer
	keyType     string
	fingerprint string
	sealKey     hpke.PrivateKey // bundles are sealed to its public half
	certKey     *ecdsa.PrivateKey
	csr         string // PEM request for certKey, sent with every enroll
}

// keyNotReadyError is a key file that does not exist yet or is still empty:
// on first boot Mender may not have generated it.
type keyNotReadyError struct {
	path  string
	empty bool
}

func (e *keyNotReadyError) Error() string {
	if e.empty {
		return fmt.Sprintf("device key %s is empty: is Mender still writing it? Pass --key PATH to use another file", e.path)
	}
	return fmt.Sprintf("device key %s not found: start the Mender client once so it generates its key, or pass --key PATH", e.path)
}

// loadIdentity reads the Mender device key. Its errors carry ExitKey and tell
// the operator what to do.
func loadIdentity(path string) (*identity, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &ExitError{Code: ExitKey, Err: &keyNotReadyError{path: path}}
	case errors.Is(err, fs.ErrPermission):
		return nil, exitErrorf(ExitKey, "cannot read device key %s: %w (run the agent as root or make the key readable)", path, err)
	case err != nil:
		return nil, exitErrorf(ExitKey, "cannot read device key %s: %w", path, err)
	case len(bytes.TrimSpace(data)) == 0:
		return nil, &ExitError{Code: ExitKey, Err: &keyNotReadyError{path: path, empty: true}}
	}
	key, err := protocol.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, exitErrorf(ExitKey, "device key %s: %w (supported: RSA 2048-4096, ECDSA P-256 and Ed25519 keys in PEM; pass --key to use another file)", path, err)
	}
	return newIdentity(path, key)
}

// awaitIdentity loads the key, waiting while it is not there yet if the
// configuration says so. A key that exists but does not parse is an error
// at once: waiting would not fix it.
func awaitIdentity(ctx context.Context, log *slog.Logger, loc keyLocation, wait bool) (*identity, error) {
	var logged time.Time
	for {
		id, err := loadIdentity(loc.host)
		var notReady *keyNotReadyError
		if err == nil || !wait || !errors.As(err, &notReady) {
			return id, err
		}
		if time.Since(logged) >= keyWaitLogEvery {
			log.Info("waiting for the Mender device key: Mender creates it on its first start",
				"key", loc.device, "from", loc.source, "empty", notReady.empty)
			logged = time.Now()
		}
		if err := sleep(ctx, keyPollInterval); err != nil {
			return nil, fmt.Errorf("waiting for device key %s: %w", loc.device, err)
		}
	}
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
