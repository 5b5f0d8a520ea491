package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse"
)

func TestVerifyIssued(t *testing.T) {
	s := newSim(t, simOptions(newClock()))
	c := newClient(t, s.URL, Config{Token: rootToken}, nil)
	got, err := c.Issue(t.Context(), "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyOf(got.PrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(got, "gw-01", pub); err != nil {
		t.Errorf("good certificate: %v", err)
	}
	err = Verify(got, "gw-02", pub)
	if !errors.Is(err, ErrNameMismatch) {
		t.Errorf("another name: err %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := Verify(got, "gw-01", &other.PublicKey); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("another key: err %v", err)
	}
	if err := Verify(got, "gw-01", nil); err == nil {
		t.Error("no key to compare with, and no error")
	}
}

// A role that takes the CN from the CSR (use_csr_common_name=true, the
// OpenBao default) gives the agent a certificate for its placeholder
// name; Verify says which settings to change, and Client.Verify on which
// role.
func TestVerifySignedWithCSRName(t *testing.T) {
	opts := simOptions(newClock())
	opts.RoleConfig.UseCSRCommonName = true
	s := newSim(t, opts)
	c := newClient(t, s.URL, Config{Token: rootToken, Sign: true}, nil)
	key, csr := newCSR(t)
	got, err := c.Sign(t.Context(), "gw-01", csr)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Verify(got, "gw-01", &key.PublicKey)
	want := `vault: certificate CN is "gatehouse-pending", not the approved name "gw-01": ` +
		"the role signs the CSR's own name: set use_csr_common_name=false and use_csr_sans=false on role gatehouse (mount pki)"
	if !errors.Is(err, ErrNameMismatch) || err.Error() != want {
		t.Errorf("err %v\nwant %s", err, want)
	}
	pure := Verify(got, "gw-01", &key.PublicKey)
	if strings.Contains(pure.Error(), "on role") {
		t.Errorf("the pure Verify names a role: %v", pure)
	}
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "use_csr_common_name") {
		t.Errorf("warnings %q", got.Warnings)
	}
}

// use_csr_sans=true copies the CSR's SANs: a device could ask for names it
// has no business carrying.
func TestVerifySignedWithCSRSANs(t *testing.T) {
	opts := simOptions(newClock())
	opts.RoleConfig.UseCSRSANs = true
	s := newSim(t, opts)
	c := newClient(t, s.URL, Config{Token: rootToken, Sign: true}, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"mender.example.com"}}, key)
	got, err := c.Sign(t.Context(), "gw-01", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})))
	if err != nil {
		t.Fatal(err)
	}
	err = Verify(got, "gw-01", &key.PublicKey)
	if !errors.Is(err, ErrNameMismatch) || !strings.Contains(err.Error(), "mender.example.com") || !strings.Contains(err.Error(), "set use_csr_sans=false") {
		t.Errorf("err %v", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, pemText := range []string{"", "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if err := Verify(certOf(pemText), "gw-01", nil); err == nil {
			t.Errorf("%q verified", pemText)
		}
	}
}

// A certificate without the name among its DNS SANs (for example one the
// role issued with exclude_cn_from_sans) is refused.
func TestVerifyNeedsNameInSANs(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkix.Name{CommonName: "gw-01"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	err := Verify(certOf(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))), "gw-01", &key.PublicKey)
	if !errors.Is(err, ErrNameMismatch) || !strings.Contains(err.Error(), "not among the certificate's DNS SANs") {
		t.Errorf("err %v", err)
	}
}

func TestPublicKeyOf(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
	for name, tt := range map[string]struct {
		pem  string
		want crypto.PublicKey
	}{
		"PKCS#8 RSA":          {pkcs8PEM(t, rsaKey), &rsaKey.PublicKey},
		"PKCS#1 RSA":          {string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})), &rsaKey.PublicKey},
		"SEC1 EC":             {string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), &ecKey.PublicKey},
		"SEC1 EC with params": {string(params) + string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})), &ecKey.PublicKey},
		"PKCS#8 Ed25519":      {pkcs8PEM(t, edKey), edKey.Public()},
	} {
		got, err := PublicKeyOf(tt.pem)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !got.(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
			t.Errorf("%s: another key", name)
		}
	}
	for _, bad := range []string{"", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		_, err := PublicKeyOf(bad)
		if err == nil || strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestCSRPublicKey(t *testing.T) {
	key, csr := newCSR(t)
	got, err := CSRPublicKey(csr)
	if err != nil || !key.PublicKey.Equal(got) {
		t.Errorf("key %v, err %v", got, err)
	}
	if _, err := CSRPublicKey("nope"); err == nil {
		t.Error("junk accepted")
	}
}

// Issue and Sign hand on the answer's warnings, such as OpenBao capping a
// ttl at the role's max_ttl (cert_util.go getCertificateNotAfter).
func TestCertificateWarnings(t *testing.T) {
	opts := simOptions(newClock())
	opts.RoleConfig.MaxTTL = 720 * time.Hour
	s := newSim(t, opts)
	c := newClient(t, s.URL, Config{Token: rootToken, TTL: "8760h"}, nil)
	want := []string{`TTL "8760h0m0s" is longer than permitted maxTTL "720h0m0s", so maxTTL is being used`}
	got, err := c.Issue(t.Context(), "gw-01")
	if err != nil || !slices.Equal(got.Warnings, want) {
		t.Errorf("issue warnings %q, err %v", got.Warnings, err)
	}
	_, csr := newCSR(t)
	got, err = c.Sign(t.Context(), "gw-01", csr)
	if err != nil || !slices.Equal(got.Warnings, want) {
		t.Errorf("sign warnings %q, err %v", got.Warnings, err)
	}
	got, _ = newClient(t, s.URL, Config{Token: rootToken, TTL: "24h"}, nil).Issue(t.Context(), "gw-01")
	if got.Warnings != nil {
		t.Errorf("warnings %q for a ttl within max_ttl", got.Warnings)
	}
}

func certOf(certPEM string) gatehouse.Certificate {
	return gatehouse.Certificate{Serial: "01", CertificatePEM: certPEM}
}

func bigOne() *big.Int { return big.NewInt(1) }

func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
