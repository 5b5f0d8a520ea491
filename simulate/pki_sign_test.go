package simulate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/simulate"
)

func TestPKISign(t *testing.T) {
	p := newPKI(t)
	key, csr := vaultCSR(t, "gatehouse-pending")
	got, err := p.Sign(context.Background(), "gw-01", csr)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, got.CertificatePEM)
	roots := x509.NewCertPool()
	roots.AddCert(parseCert(t, p.CACertPEM()))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "gw-01", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("signed certificate does not verify: %v", err)
	}
	if cert.Subject.CommonName != "gw-01" {
		t.Errorf("CN %q, want the approved name, not the CSR's", cert.Subject.CommonName)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Error("certificate is not for the CSR's key")
	}
	if got.PrivateKeyPEM != "" || got.CAChainPEM != p.CACertPEM() || got.Serial != simulate.FormatSerial(cert.SerialNumber) {
		t.Errorf("certificate %+v", got)
	}
	if issued := p.Certificates(); len(issued) != 1 || issued[0].Serial != got.Serial {
		t.Errorf("Issued() = %v", issued)
	}
}

// signCert (cert_util.go) checks the CSR's key type against the role's:
// the recommended ec role refuses an Ed25519 CSR, key_type=any takes it.
func TestPKISignEd25519CSR(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	p := newPKI(t)
	if _, err := p.Sign(context.Background(), "gw-01", csr); err == nil || !strings.Contains(err.Error(), "role requires keys of type ec") {
		t.Errorf("Ed25519 CSR on an ec role: err %v", err)
	}
	role := simulate.RecommendedVaultRole()
	role.KeyType = "any"
	if err := p.SetRole(role); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Sign(context.Background(), "gw-01", csr); err != nil {
		t.Errorf("Ed25519 CSR on a key_type=any role: %v", err)
	}
}

func TestPKISignRejects(t *testing.T) {
	_, good := vaultCSR(t, "x")
	for name, tt := range map[string]struct{ cn, csr string }{
		"empty csr":   {"gw-01", ""},
		"no PEM":      {"gw-01", "not pem"},
		"not a csr":   {"gw-01", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
		"bad name":    {"gw 01", good},
		"empty name":  {"", good},
		"certificate": {"gw-01", newPKI(t).CACertPEM()},
	} {
		p := newPKI(t)
		_, err := p.Sign(context.Background(), tt.cn, tt.csr)
		if err == nil || !strings.HasPrefix(err.Error(), "vault: 400") {
			t.Errorf("%s: err %v, want a vault 400", name, err)
		}
		if p.Len() != 0 {
			t.Errorf("%s: a certificate was issued", name)
		}
	}
}

func TestPKIRevoke(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	a, _ := p.Issue(ctx, "gw-01")
	b, _ := p.Issue(ctx, "gw-02")
	for _, s := range []string{b.Serial, a.Serial, b.Serial} {
		if err := p.Revoke(ctx, s); err != nil {
			t.Fatalf("revoke %s: %v", s, err)
		}
	}
	if got := p.Revoked(); len(got) != 2 || got[0] != b.Serial || got[1] != a.Serial {
		t.Errorf("Revoked() = %v, want [%s %s]", got, b.Serial, a.Serial)
	}
	err := p.Revoke(ctx, "de:ad:be:ef")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || !strings.HasPrefix(err.Error(), "vault: 400") {
		t.Errorf("unknown serial: err %v, want a vault 400 wrapping ErrBackendNotFound", err)
	}
}

func TestPKIRevokeFaults(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	c, _ := p.Issue(ctx, "gw-01")
	p.FailNext(1, nil)
	if err := p.Revoke(ctx, c.Serial); !errors.Is(err, simulate.ErrTransient) || len(p.Revoked()) != 0 {
		t.Errorf("err %v, revoked %v: an injected failure must change nothing", err, p.Revoked())
	}
	p.LoseNext(1)
	if err := p.Revoke(ctx, c.Serial); !errors.Is(err, simulate.ErrLostResponse) || len(p.Revoked()) != 1 {
		t.Errorf("err %v, revoked %v: a lost response still revokes", err, p.Revoked())
	}
}
