package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/protocol"
)

// signingCA signs CSRs the way the PKI does in sign mode: the name is the
// approved one, the key is the CSR's.
type signingCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newSigningCA(t *testing.T) *signingCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &signingCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (ca *signingCA) sign(t *testing.T, csrPEM, name string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		t.Fatalf("CSR %q is not PEM", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// signedBundle is a sign-mode bundle: a certificate for the CSR and no
// sealed private key.
func signedBundle(t *testing.T, ca *signingCA, csr string) (*protocol.Bundle, map[string][]byte) {
	b, secrets := testBundle()
	b.Certificate, b.CAChain = ca.sign(t, csr, b.Name), ca.pem
	delete(secrets, protocol.FieldPrivateKey)
	return b, secrets
}

func testIdentity(t *testing.T, kind string) *identity {
	t.Helper()
	path, key := writeKey(t, kind)
	id, err := newIdentity(path, key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRunSignMode(t *testing.T) {
	for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			f := newFakeServer(t)
			ca := newSigningCA(t)
			keyPath, key := writeKey(t, kind)
			cfg, logs := testConfig(t, f, keyPath)
			ch := runAsync(t.Context(), cfg)
			f.waitEnrolled(t)
			f.provision(signedBundle(t, ca, f.lastCSR(t)))
			if r := await(t, ch); r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			keyPEM := checkSignedFiles(t, cfg, key, ca)
			if strings.Contains(logs.String(), keyBody(keyPEM)) {
				t.Error("log contains the certificate key")
			}
		})
	}
}

// checkSignedFiles checks device.crt and device.key go together, and that
// the key is the one derived from the device key; it returns the key file.
func checkSignedFiles(t *testing.T, cfg Config, deviceKey crypto.Signer, ca *signingCA) string {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(cfg.OutDir, FileDeviceCert))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(cfg.OutDir, FileDeviceKey)
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("device.key mode %v, want 0600", fi.Mode().Perm())
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("device.key does not match device.crt: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "gw-01", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("device.crt does not verify: %v", err)
	}
	derived, err := protocol.DeriveCertKey(deviceKey)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(derived)
	if want := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}); string(keyPEM) != string(want) {
		t.Error("device.key is not the PKCS#8 PEM of the derived certificate key")
	}
	checkFile(t, filepath.Join(cfg.OutDir, FileDeviceName), "gw-01\n", 0o644)
	return string(keyPEM)
}

// keyBody is the base64 of a PEM block, without its armour.
func keyBody(keyPEM string) string {
	block, _ := pem.Decode([]byte(keyPEM))
	return string(pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: block.Bytes}))[len("-----BEGIN X-----\n"):][:40]
}

// After a power cut between enrolling and receiving the certificate, the
// restarted agent sends the same CSR and can write the key that matches the
// certificate signed from the first one.
func TestSignModeAcrossRestart(t *testing.T) {
	f := newFakeServer(t)
	ca := newSigningCA(t)
	keyPath, key := writeKey(t, "ecdsa")
	cfg, _ := testConfig(t, f, keyPath)
	ctx, cancel := context.WithCancel(t.Context())
	ch := runAsync(ctx, cfg)
	f.waitForCalls(t, protocol.PathWait, 1)
	cancel()
	if r := await(t, ch); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("first run: %v", r.err)
	}
	f.provision(signedBundle(t, ca, f.lastCSR(t)))

	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil {
		t.Fatalf("second run: %v", r.err)
	}
	f.mu.Lock()
	csrs := append([]string(nil), f.csrs...)
	f.mu.Unlock()
	if len(csrs) != 2 || csrs[0] != csrs[1] {
		t.Errorf("%d enrolls; the restarted agent sent a different CSR", len(csrs))
	}
	checkSignedFiles(t, cfg, key, ca)
}

func TestSignModeRefusesForeignCertificate(t *testing.T) {
	f := newFakeServer(t)
	ca := newSigningCA(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	other := testIdentity(t, "ed25519")
	b, secrets := signedBundle(t, ca, other.csr)
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	r := await(t, runAsync(t.Context(), cfg))
	if r.err == nil || !strings.Contains(r.err.Error(), "does not match this gateway's certificate key") {
		t.Fatalf("err %v, want a key mismatch", r.err)
	}
	for _, name := range []string{FileDeviceKey, FileDeviceCert, FileDeviceName} {
		if _, err := os.Stat(filepath.Join(cfg.OutDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written despite the mismatch", name)
		}
	}
}

func TestEnrollSendsCSR(t *testing.T) {
	f := newFakeServer(t)
	f.hold = 50 * time.Millisecond
	keyPath, _ := writeKey(t, "rsa")
	cfg, _ := testConfig(t, f, keyPath)
	cfg.Once = true
	Run(t.Context(), cfg)
	block, _ := pem.Decode([]byte(f.lastCSR(t)))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != protocol.PendingCommonName {
		t.Errorf("CSR CN %q", csr.Subject.CommonName)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CSR key %T, want the derived ECDSA key, never the RSA device key", csr.PublicKey)
	}
}
