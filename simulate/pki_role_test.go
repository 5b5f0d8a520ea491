package simulate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/simulate"
)

func pkiWithRole(t *testing.T, change func(*simulate.VaultRole)) *simulate.PKI {
	t.Helper()
	p := newPKI(t)
	r := simulate.RecommendedVaultRole()
	change(&r)
	if err := p.SetRole(r); err != nil {
		t.Fatal(err)
	}
	return p
}

func csrWith(t *testing.T, tmpl *x509.CertificateRequest) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, _ := vaultCSR(t, "unused")
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// A role created without parameters, as NewPKI has it
// (builtin/logical/pki/path_roles.go pathRoles defaults): key_type rsa,
// use_csr_common_name and use_csr_sans true, no allowed domains, so a bare
// gateway name is refused (cert_util.go validateNames) and an ECDSA CSR
// too (signCert: "role requires keys of type rsa").
func TestPKIDefaultRole(t *testing.T) {
	ctx := context.Background()
	p, err := simulate.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Role(), simulate.DefaultVaultRole()) {
		t.Errorf("role %v, want OpenBao's defaults", p.Role())
	}
	_, err = p.Issue(ctx, "gw-01")
	if err == nil || err.Error() != "vault: 400 common name gw-01 not allowed by this role" {
		t.Errorf("issue gw-01: err %v", err)
	}
	_, csr := vaultCSR(t, "gatehouse-pending")
	if _, err := p.Sign(ctx, "gw-01", csr); err == nil || err.Error() != "vault: 400 role requires keys of type rsa" {
		t.Errorf("sign ECDSA CSR: err %v", err)
	}
	// allow_localhost is the one name a new role takes; issue makes an RSA
	// 2048 key, as key_type=rsa with key_bits 0 means.
	got, err := p.Issue(ctx, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(got.PrivateKeyPEM))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if k, ok := key.(*rsa.PrivateKey); err != nil || !ok || k.N.BitLen() != 2048 {
		t.Errorf("key %T (%v), want RSA 2048", key, err)
	}
}

// With use_csr_common_name=true the certificate names whatever the CSR says
// and the requested common_name is ignored with a warning
// (generateCreationBundle and pathIssueSignCert); with use_csr_sans the
// CSR's DNS SANs come along too.
func TestPKISignTakesCSRNames(t *testing.T) {
	p := pkiWithRole(t, func(r *simulate.VaultRole) { r.UseCSRCommonName, r.UseCSRSANs = true, true })
	_, csr := csrWith(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gatehouse-pending"}, DNSNames: []string{"mender.example.com"}})
	got, err := p.Sign(context.Background(), "gw-01", csr)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, got.CertificatePEM)
	if cert.Subject.CommonName != "gatehouse-pending" || !slices.Equal(cert.DNSNames, []string{"mender.example.com", "gatehouse-pending"}) {
		t.Errorf("CN %q, SANs %v: want the CSR's names", cert.Subject.CommonName, cert.DNSNames)
	}
	want := `the common_name field was provided but the role is set with "use_csr_common_name" set to true`
	if !slices.Contains(got.Warnings, want) {
		t.Errorf("warnings %q, want %q", got.Warnings, want)
	}

	p = newPKI(t) // use_csr_common_name=false, use_csr_sans=false
	got, err = p.Sign(context.Background(), "gw-01", csr)
	if err != nil {
		t.Fatal(err)
	}
	cert = parseCert(t, got.CertificatePEM)
	if cert.Subject.CommonName != "gw-01" || !slices.Equal(cert.DNSNames, []string{"gw-01"}) || len(got.Warnings) != 0 {
		t.Errorf("CN %q, SANs %v, warnings %q: want only the approved name", cert.Subject.CommonName, cert.DNSNames, got.Warnings)
	}
}

// issue generates a key of the role's type (path_issue_sign.go pathIssue,
// certutil key generation); key_type=any cannot issue without a key_type
// in the request, which the in-process API never sends.
func TestPKIIssueKeyTypes(t *testing.T) {
	for _, tt := range []struct {
		keyType string
		bits    int
		want    string
	}{{"rsa", 0, "*rsa.PrivateKey"}, {"ec", 384, "*ecdsa.PrivateKey"}, {"ed25519", 0, "ed25519.PrivateKey"}} {
		p := pkiWithRole(t, func(r *simulate.VaultRole) { r.KeyType, r.KeyBits = tt.keyType, tt.bits })
		got, err := p.Issue(context.Background(), "gw-01")
		if err != nil {
			t.Fatalf("%s: %v", tt.keyType, err)
		}
		block, _ := pem.Decode([]byte(got.PrivateKeyPEM))
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil || reflect.TypeOf(key).String() != tt.want {
			t.Errorf("%s: key %T (%v), want %s", tt.keyType, key, err, tt.want)
		}
		if k, ok := key.(*ecdsa.PrivateKey); ok && k.Curve.Params().BitSize != 384 {
			t.Errorf("ec key of %d bits, want the role's 384", k.Curve.Params().BitSize)
		}
	}
	p := pkiWithRole(t, func(r *simulate.VaultRole) { r.KeyType = "any" })
	_, err := p.Issue(context.Background(), "gw-01")
	want := `vault: 400 role key type "any" not allowed for issuing certificates without providing key_type and/or key_bits request parameters`
	if err == nil || err.Error() != want || p.Len() != 0 {
		t.Errorf("issue with key_type=any: err %v", err)
	}
}

// A ttl above max_ttl is capped with getCertificateNotAfter's warning; a
// role without ttl uses the mount's 768h.
func TestPKITTLCapped(t *testing.T) {
	p := pkiWithRole(t, func(r *simulate.VaultRole) { r.MaxTTL = 24 * time.Hour })
	got, err := p.Issue(context.Background(), "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	want := `TTL "768h0m0s" is longer than permitted maxTTL "24h0m0s", so maxTTL is being used`
	if !slices.Equal(got.Warnings, []string{want}) {
		t.Errorf("warnings %q, want %q", got.Warnings, want)
	}
	if d := time.Until(parseCert(t, got.CertificatePEM).NotAfter); d > 24*time.Hour || d < 23*time.Hour {
		t.Errorf("valid for %v, want the 24h max_ttl", d)
	}
}

// not_before_duration backdates NotBefore (certutil.createCertificate);
// Issued counts a certificate from NotBefore plus that backdating (less a
// minute for clock skew), so one issued after since is found although its
// NotBefore lies before since.
func TestPKINotBeforeAndIssued(t *testing.T) {
	ctx := context.Background()
	p := pkiWithRole(t, func(r *simulate.VaultRole) { r.NotBeforeDuration = 5 * time.Minute })
	since := time.Now()
	got, err := p.Issue(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	nb := parseCert(t, got.CertificatePEM).NotBefore
	if !within(nb, since.Add(-5*time.Minute), 2*time.Second) {
		t.Errorf("NotBefore %v, want 5 minutes before %v", nb, since)
	}
	p.Issue(ctx, "gw-02")
	found, err := p.Issued(ctx, "gw-01", since.Add(-time.Second))
	if err != nil || len(found) != 1 || found[0].Serial != got.Serial || !found[0].NotBefore.Equal(nb) {
		t.Errorf("Issued = %v, %v; want the one gw-01 certificate", found, err)
	}
	if found, _ := p.Issued(ctx, "gw-01", time.Now().Add(90*time.Second)); len(found) != 0 {
		t.Errorf("Issued after the issue = %v, want none", found)
	}
}

// no_store keeps the certificate out of storage: it cannot be listed or
// revoked by serial (path_roles.go no_store; pathIssueSignCert).
func TestPKINoStore(t *testing.T) {
	ctx := context.Background()
	p := pkiWithRole(t, func(r *simulate.VaultRole) { r.NoStore = true })
	got, err := p.Issue(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 0 {
		t.Errorf("%d stored certificates, want none", p.Len())
	}
	if found, _ := p.Issued(ctx, "gw-01", time.Time{}); len(found) != 0 {
		t.Errorf("Issued = %v", found)
	}
	if err := p.Revoke(ctx, got.Serial); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("revoke: err %v, want not found", err)
	}
}

// SetRole refuses what validateRole refuses.
func TestPKISetRoleRefuses(t *testing.T) {
	p := newPKI(t)
	for _, tt := range []struct {
		change func(*simulate.VaultRole)
		want   string
	}{
		{func(r *simulate.VaultRole) { r.TTL, r.MaxTTL = 2*time.Hour, time.Hour }, `"ttl" value must be less than "max_ttl" value`},
		{func(r *simulate.VaultRole) { r.KeyBits = 300 }, "unsupported bit length for EC key: 300"},
		{func(r *simulate.VaultRole) { r.KeyType = "dsa" }, "unknown key type dsa"},
	} {
		r := simulate.RecommendedVaultRole()
		tt.change(&r)
		if err := p.SetRole(r); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err %v, want %q", err, tt.want)
		}
	}
	if p.Role().KeyType != "ec" {
		t.Errorf("a refused role replaced the old one: %v", p.Role())
	}
}

// Which names a role takes (cert_util.go validateNames): allow_any_name,
// or allowed_domains with allow_bare_domains (exact), allow_subdomains
// (suffix) or allow_glob_domains (glob), or allow_localhost.
func TestPKIRoleNames(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(*simulate.VaultRole)
		ok     []string
		bad    []string
	}{
		{"any name", func(r *simulate.VaultRole) {}, []string{"gw-01", "a.b.example"}, []string{"-gw", "gw..01"}},
		{"bare", func(r *simulate.VaultRole) {
			r.AllowAnyName, r.AllowedDomains, r.AllowBareDomains = false, []string{"gw-01"}, true
		}, []string{"gw-01", "GW-01"}, []string{"gw-02", "x.gw-01"}},
		{"subdomains", func(r *simulate.VaultRole) {
			r.AllowAnyName, r.AllowedDomains, r.AllowSubdomains = false, []string{"edge.example"}, true
		}, []string{"gw-01.edge.example"}, []string{"gw-01", "edge.example"}},
		{"glob", func(r *simulate.VaultRole) {
			r.AllowAnyName, r.AllowedDomains, r.AllowGlobDomains = false, []string{"gw-*"}, true
		}, []string{"gw-01", "gw-a.b"}, []string{"xgw-01"}},
		{"localhost", func(r *simulate.VaultRole) { r.AllowAnyName = false }, []string{"localhost"}, []string{"gw-01"}},
		{"cn_validations email only", func(r *simulate.VaultRole) { r.CNValidations = []string{"email"} }, nil, []string{"gw-01"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pkiWithRole(t, tt.change)
			for _, n := range tt.ok {
				if _, err := p.Issue(context.Background(), n); err != nil {
					t.Errorf("%q refused: %v", n, err)
				}
			}
			for _, n := range tt.bad {
				if _, err := p.Issue(context.Background(), n); err == nil {
					t.Errorf("%q allowed", n)
				}
			}
		})
	}
}

// signCert's key checks: the role's minimum key size, and OpenBao's own
// minimum of 2048-bit RSA even for key_type=any.
func TestPKISignKeySizes(t *testing.T) {
	p := pkiWithRole(t, func(r *simulate.VaultRole) { r.KeyBits = 384 })
	_, csr := vaultCSR(t, "x")
	if _, err := p.Sign(context.Background(), "gw-01", csr); err == nil || !strings.Contains(err.Error(), "role requires a minimum of a 384-bit key, but CSR's key is 256 bits") {
		t.Errorf("P-256 CSR on a 384-bit role: err %v", err)
	}
	p = pkiWithRole(t, func(r *simulate.VaultRole) { r.KeyType = "any" })
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, edKey)
	edCSR := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	if _, err := p.Sign(context.Background(), "gw-01", edCSR); err != nil {
		t.Errorf("Ed25519 CSR on key_type=any: %v", err)
	}
}
