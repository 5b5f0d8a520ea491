package simulate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/simulate"
)

var serialPattern = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2})*$`)

func parseCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("want exactly one CERTIFICATE PEM block, got %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPKIIssue(t *testing.T) {
	p := newPKI(t)
	got, err := p.Issue(context.Background(), "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	root := parseCert(t, p.CACertPEM())
	if root.Subject.CommonName != simulate.CACommonName || !root.IsCA {
		t.Errorf("root: CN %q, IsCA %v", root.Subject.CommonName, root.IsCA)
	}
	if got.CAChainPEM != p.CACertPEM() {
		t.Errorf("CA chain is not the root certificate")
	}

	cert := parseCert(t, got.CertificatePEM)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:     roots,
		DNSName:   "gw-01",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("certificate does not verify against the CA: %v", err)
	}
	if cert.Subject.CommonName != "gw-01" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	// OpenBao backdates NotBefore by 30 s (certutil.createCertificate), and
	// without a ttl the mount's default lease TTL, 768h, applies
	// (cert_util.go getCertificateNotAfter).
	if now := time.Now(); !within(cert.NotBefore, now.Add(-30*time.Second), 2*time.Second) || !within(cert.NotAfter, now.Add(simulate.IssuedTTL), 2*time.Second) {
		t.Errorf("validity %v..%v, want 30 s ago..%v from now", cert.NotBefore, cert.NotAfter, simulate.IssuedTTL)
	}
	if len(got.Warnings) != 0 {
		t.Errorf("warnings %q", got.Warnings)
	}

	// tls.X509KeyPair fails unless the key matches the certificate.
	if _, err := tls.X509KeyPair([]byte(got.CertificatePEM), []byte(got.PrivateKeyPEM)); err != nil {
		t.Errorf("key does not match certificate: %v", err)
	}
	block, _ := pem.Decode([]byte(got.PrivateKeyPEM))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("private key is not a PKCS#8 PRIVATE KEY block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := key.(*ecdsa.PrivateKey); !ok || k.Curve.Params().Name != "P-256" {
		t.Errorf("key is %T, want ECDSA P-256", key)
	}

	if !serialPattern.MatchString(got.Serial) || got.Serial != simulate.FormatSerial(cert.SerialNumber) {
		t.Errorf("serial %q, want colon hex of %x", got.Serial, cert.SerialNumber)
	}
	if cert.SerialNumber.BitLen() > 128 || cert.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %x is not a positive 128-bit number", cert.SerialNumber)
	}
}

func TestPKIIssuedWithoutKeys(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	a, err := p.Issue(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Issue(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	if a.Serial == b.Serial || a.PrivateKeyPEM == b.PrivateKeyPEM {
		t.Errorf("two issues share a serial or key")
	}
	issued := p.Certificates()
	if len(issued) != 2 || p.Len() != 2 {
		t.Fatalf("Issued() has %d, Len() = %d, want 2", len(issued), p.Len())
	}
	for i, want := range []string{a.Serial, b.Serial} {
		c := issued[i]
		if c.Serial != want || c.PrivateKeyPEM != "" || c.CertificatePEM == "" {
			t.Errorf("Issued()[%d] = serial %s, key %q; want serial %s and no key", i, c.Serial, c.PrivateKeyPEM, want)
		}
	}
}

// A DNS label has at most 63 bytes: OpenBao's idna conversion with
// VerifyDNSLength refuses a longer CN (cert_util.go generateCreationBundle),
// although gatehouse's name policy allows names of up to 128 characters.
func TestPKIRejectsCommonName(t *testing.T) {
	for _, cn := range []string{"", strings.Repeat("a", 64), "gw 01", "gw/01", "-gw", "gw_01"} {
		p := newPKI(t)
		_, err := p.Issue(context.Background(), cn)
		if err == nil || !strings.HasPrefix(err.Error(), "vault: 400") {
			t.Errorf("cn %q: err = %v, want a vault 400", cn, err)
		}
		if p.Len() != 0 {
			t.Errorf("cn %q: a certificate was issued", cn)
		}
	}
	if _, err := newPKI(t).Issue(context.Background(), strings.Repeat("a", 63)); err != nil {
		t.Errorf("63-character cn: %v", err)
	}
}

func within(got, want time.Time, slack time.Duration) bool {
	d := got.Sub(want)
	return d >= -slack && d <= slack
}

func TestFormatSerial(t *testing.T) {
	n, _ := new(big.Int).SetString("1a2b00ff", 16)
	if got := simulate.FormatSerial(n); got != "1a:2b:00:ff" {
		t.Errorf("FormatSerial = %q, want 1a:2b:00:ff", got)
	}
}

func TestPKIConcurrent(t *testing.T) {
	p := newPKI(t)
	var mu sync.Mutex
	serials := map[string]bool{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			c, err := p.Issue(context.Background(), "gw-01")
			if err != nil {
				t.Error(err)
				return
			}
			_ = p.Certificates()
			mu.Lock()
			serials[c.Serial] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(serials) != 20 || p.Len() != 20 {
		t.Errorf("%d distinct serials, Len() = %d, want 20", len(serials), p.Len())
	}
}
