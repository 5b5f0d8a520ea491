package protocol_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"gatehouse/protocol"
)

func TestDeriveCertKeyDeterministic(t *testing.T) {
	seen := map[string]string{}
	for _, k := range supportedKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			a, err := protocol.DeriveCertKey(k.key)
			if err != nil {
				t.Fatalf("DeriveCertKey: %v", err)
			}
			// A restarted agent re-reads the key file; the certificate key must not change.
			reread, err := protocol.ParsePrivateKeyPEM(pemPKCS8(t, k.key))
			if err != nil {
				t.Fatal(err)
			}
			b, err := protocol.DeriveCertKey(reread)
			if err != nil {
				t.Fatal(err)
			}
			if !a.Equal(b) {
				t.Fatal("two derivations from the same key differ")
			}
			if a.Curve != elliptic.P256() {
				t.Errorf("curve %s, want P-256", a.Curve.Params().Name)
			}
			pub := string(spkiOf(t, a.Public()))
			if other, dup := seen[pub]; dup {
				t.Errorf("same certificate key as %s", other)
			}
			seen[pub] = k.name
		})
	}
}

// The certificate key must be independent of the seal key and of the device
// key itself, or one leaked file would reveal another.
func TestDeriveCertKeyDiffersFromDeviceKey(t *testing.T) {
	ec := ecKey(t, elliptic.P256())
	k, err := protocol.DeriveCertKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	if k.Equal(ec) || k.PublicKey.Equal(&ec.PublicKey) {
		t.Error("certificate key equals the device key")
	}
}

func TestDeriveCertKeyRejectsUnsupportedKeys(t *testing.T) {
	p384 := ecKey(t, elliptic.P384())
	if _, err := protocol.DeriveCertKey(p384); err == nil || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("P-384 device key: err = %v, want a refusal naming the curve", err)
	}
}

func TestCreateCSR(t *testing.T) {
	for _, k := range supportedKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			key, err := protocol.DeriveCertKey(k.key)
			if err != nil {
				t.Fatal(err)
			}
			s, err := protocol.CreateCSR(key)
			if err != nil {
				t.Fatal(err)
			}
			csr := parseCSR(t, s)
			if err := csr.CheckSignature(); err != nil {
				t.Fatalf("CSR signature does not verify: %v", err)
			}
			if csr.Subject.CommonName != protocol.PendingCommonName {
				t.Errorf("CN = %q, want %q", csr.Subject.CommonName, protocol.PendingCommonName)
			}
			if pub, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
				t.Errorf("CSR public key %T is not the certificate key", csr.PublicKey)
			}
			again, err := protocol.CreateCSR(key)
			if err != nil || again != s {
				t.Errorf("second CSR differs (err %v): a restarted agent would send another request", err)
			}
		})
	}
}

func parseCSR(t *testing.T, s string) *x509.CertificateRequest {
	t.Helper()
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE REQUEST" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("want exactly one CERTIFICATE REQUEST block, got %q", s)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}
