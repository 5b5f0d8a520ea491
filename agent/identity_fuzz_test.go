package agent

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse/protocol"
)

// FuzzLoadIdentity feeds arbitrary device key files to the agent's key
// loading, seeded with every format it accepts. A file it accepts yields an
// identity that is a function of the key alone: its fingerprint is that of
// the key's SPKI, and loading the file again gives the same seal key and
// byte for byte the same CSR (the restart guarantee), a CSR that is signed
// by the derived certificate key and names PendingCommonName. A file it
// refuses gives no identity, an *ExitError with ExitKey (an empty file the
// "not ready" error the agent waits on), and a message that repeats no
// line of key material.
func FuzzLoadIdentity(f *testing.F) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []crypto.Signer{ed, ec, rk} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add([]byte("\n \n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"))

	path := filepath.Join(f.TempDir(), "mender-agent.pem")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		id, err := loadIdentity(path)
		if err != nil {
			checkKeyRefused(t, id, err, data)
			return
		}
		checkIdentity(t, id)
		again, err := loadIdentity(path)
		if err != nil || again.fingerprint != id.fingerprint || again.csr != id.csr ||
			!bytes.Equal(again.sealKey.PublicKey().Bytes(), id.sealKey.PublicKey().Bytes()) {
			t.Fatalf("loading the same key again gave another identity (%v)", err)
		}
	})
}

func checkKeyRefused(t *testing.T, id *identity, err error, data []byte) {
	t.Helper()
	var exit *ExitError
	if id != nil || !errors.As(err, &exit) || exit.Code != ExitKey {
		t.Fatalf("refused with %v (%T) and identity %v; want an ExitKey error and none", err, err, id)
	}
	var notReady *keyNotReadyError
	if empty := len(bytes.TrimSpace(data)) == 0; empty != (errors.As(err, &notReady) && notReady.empty) {
		t.Fatalf("empty file %t, but error %v", empty, err)
	}
	msg := err.Error()
	if len(msg) > 1000 {
		t.Fatalf("a %d-byte error message", len(msg))
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && !strings.Contains(line, ":") && strings.Contains(msg, line) {
			t.Fatalf("error %q repeats a line of the key file", msg)
		}
	}
}

// checkIdentity proves every part of an identity from its key.
func checkIdentity(t *testing.T, id *identity) {
	t.Helper()
	spki, err := protocol.SignerPublicSPKI(id.key)
	if err != nil || id.fingerprint != protocol.Fingerprint(spki) || id.keyType != protocol.KeyType(id.key.Public()) || id.keyType == "" {
		t.Fatalf("identity %s (%s) is not its key's (%v)", id.fingerprint, id.keyType, err)
	}
	seal, err := protocol.DeriveSealKey(id.key)
	if err != nil || !bytes.Equal(seal.PublicKey().Bytes(), id.sealKey.PublicKey().Bytes()) {
		t.Fatalf("seal key is not the key's: %v", err)
	}
	block, rest := pem.Decode([]byte(id.csr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("CSR %q is not one PEM CERTIFICATE REQUEST", id.csr)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR does not parse or verify: %v", err)
	}
	if csr.Subject.CommonName != protocol.PendingCommonName || !id.certKey.PublicKey.Equal(csr.PublicKey) {
		t.Fatalf("CSR for %q with another key than the certificate key", csr.Subject.CommonName)
	}
}
