package simulate

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"gatehouse"
)

var _ gatehouse.PKI = (*PKI)(nil)

// CACommonName is the subject common name of the simulated root CA.
const CACommonName = "gatehouse simulated root CA"

// issuedSkew is the clock skew gatehouse's vault client allows in Issued.
const issuedSkew = time.Minute

// PKI simulates an OpenBao PKI secrets engine with one role and a real root
// CA, so issued certificates verify like production ones. The role starts
// as a new OpenBao role does (DefaultVaultRole), which refuses gateway
// names and signs the CSR's own name; set RecommendedVaultRole with SetRole
// for one that works. It is safe for concurrent use.
type PKI struct {
	Faults

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  string

	mu      sync.Mutex
	role    VaultRole
	issued  map[string]*storedCert // colon serial → certificate, never with its key
	order   []string               // serials in issue order
	revoked map[string]time.Time   // serial → revocation time
	revokes []string               // serials in revocation order
}

// storedCert is what OpenBao keeps under certs/<serial>.
type storedCert struct {
	gatehouse.Certificate
	x509 *x509.Certificate
}

// vaultError is a refusal together with the HTTP status Vault answers it with,
// so the in-process and HTTP simulators fail the same way.
type vaultError struct {
	status int
	msg    string
	err    error // a gatehouse sentinel the in-process API promises, if any
}

func (e *vaultError) Error() string { return fmt.Sprintf("vault: %d %s", e.status, e.msg) }
func (e *vaultError) Unwrap() error { return e.err }

func vaultBadRequest(format string, args ...any) *vaultError {
	return &vaultError{status: 400, msg: fmt.Sprintf(format, args...)}
}

// NewPKI returns a PKI with a freshly generated ECDSA P-256 root CA and a
// role with OpenBao's defaults for a new role.
func NewPKI() (*PKI, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("vault: generate CA key: %w", err)
	}
	tmpl, err := caTemplate()
	if err != nil {
		return nil, fmt.Errorf("vault: CA template: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("vault: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("vault: parse CA certificate: %w", err)
	}
	return &PKI{
		caCert:  cert,
		caKey:   key,
		caPEM:   encodePEM("CERTIFICATE", der),
		role:    DefaultVaultRole(),
		issued:  make(map[string]*storedCert),
		revoked: make(map[string]time.Time),
	}, nil
}

func caTemplate() (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: CACommonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, nil
}

// SetRole replaces the role's settings, as `bao write pki/roles/<name>`
// does; it refuses what OpenBao refuses (a ttl above max_ttl, a key size the
// key type does not have).
func (p *PKI) SetRole(r VaultRole) error {
	r, err := r.validate()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.role = r
	return nil
}

// Role returns the role's current settings.
func (p *PKI) Role() VaultRole {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.role
}

// Issue answers like POST /v1/pki/issue/<role> with private_key_format=pkcs8.
// Like Vault it is not idempotent: every call is a new key and serial.
func (p *PKI) Issue(ctx context.Context, commonName string) (gatehouse.Certificate, error) {
	return p.call(ctx, certOrder{commonName: commonName, pkcs8: true})
}

// Sign answers like POST /v1/pki/sign/<role>. Whether the certificate names
// commonName or the CSR's own CN depends on the role's use_csr_common_name.
// The certificate comes without a private key: it never left the device.
func (p *PKI) Sign(ctx context.Context, commonName, csrPEM string) (gatehouse.Certificate, error) {
	return p.call(ctx, certOrder{sign: true, commonName: commonName, csr: csrPEM})
}

// Revoke answers like POST /v1/pki/revoke. As in Vault, revoking twice
// succeeds, and an unknown serial is a 400 ("certificate with serial ... not
// found"); here that error also wraps gatehouse.ErrBackendNotFound.
func (p *PKI) Revoke(ctx context.Context, serial string) error {
	if err := p.enter(ctx, "vault"); err != nil {
		return err
	}
	if _, err := p.revoke(serial); err != nil {
		return err
	}
	return p.lose("vault")
}

// call runs one issue or sign behind the in-process faults.
func (p *PKI) call(ctx context.Context, o certOrder) (gatehouse.Certificate, error) {
	if err := p.enter(ctx, "vault"); err != nil {
		return gatehouse.Certificate{}, err
	}
	c, err := p.execute(o)
	if err != nil {
		return gatehouse.Certificate{}, err
	}
	if err := p.lose("vault"); err != nil {
		return gatehouse.Certificate{}, err
	}
	return c.Certificate, nil
}

// vaultCert is a new certificate with what Vault reports beside it.
type vaultCert struct {
	gatehouse.Certificate
	keyType   string // private_key_type: "rsa", "ec", "ed25519"; "" when signed
	notBefore time.Time
	expires   time.Time
}

// execute issues or signs under the current role.
func (p *PKI) execute(o certOrder) (vaultCert, error) {
	if o.sign {
		return p.signOrder(p.Role(), o)
	}
	return p.issueOrder(p.Role(), o)
}

// issueOrder follows pathIssue and generateCert: names and TTL are checked
// before a key of the role's type is generated.
func (p *PKI) issueOrder(role VaultRole, o certOrder) (vaultCert, error) {
	role, warnings, err := issueRole(role, o)
	if err != nil {
		return vaultCert{}, err
	}
	s, err := role.subject(o.commonName, nil)
	if err != nil {
		return vaultCert{}, err
	}
	key, err := generateVaultKey(role.KeyType, role.KeyBits)
	if err != nil {
		return vaultCert{}, fmt.Errorf("vault: 500 generate key: %w", err)
	}
	c, err := p.certify(role, s, key.Public(), o.ttl)
	if err != nil {
		return vaultCert{}, err
	}
	if c.PrivateKeyPEM, err = marshalVaultKey(key, o.pkcs8); err != nil {
		return vaultCert{}, err
	}
	c.keyType = role.KeyType
	c.Warnings = append(warnings, c.Warnings...)
	return c, nil
}

// signOrder follows signCert: the CSR's key type, then the names, then the
// CSR's signature (certutil.SignCertificate).
func (p *PKI) signOrder(role VaultRole, o certOrder) (vaultCert, error) {
	csr, err := parseSignCSR(o.csr)
	if err != nil {
		return vaultCert{}, err
	}
	if err := role.csrKey(csr); err != nil {
		return vaultCert{}, err
	}
	s, err := role.subject(o.commonName, csr)
	if err != nil {
		return vaultCert{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		return vaultCert{}, vaultBadRequest("request signature invalid: %v", err)
	}
	c, err := p.certify(role, s, csr.PublicKey, o.ttl)
	if err != nil {
		return vaultCert{}, err
	}
	if role.UseCSRCommonName && o.commonName != "" {
		c.Warnings = append([]string{`the common_name field was provided but the role is set with "use_csr_common_name" set to true`}, c.Warnings...)
	}
	return c, nil
}

// certify signs a leaf certificate for pub and stores it unless the role
// has no_store.
func (p *PKI) certify(role VaultRole, s vaultSubject, pub crypto.PublicKey, ttl time.Duration) (vaultCert, error) {
	now := time.Now()
	notAfter, warnings := role.notAfter(ttl, now)
	if notAfter.After(p.caCert.NotAfter) {
		return vaultCert{}, vaultBadRequest("cannot satisfy request, as TTL would result in notAfter of %s that is beyond the expiration of the CA certificate at %s",
			notAfter.UTC().Format(time.RFC3339Nano), p.caCert.NotAfter.UTC().Format(time.RFC3339Nano))
	}
	tmpl, err := role.leafTemplate(s, now, notAfter)
	if err != nil {
		return vaultCert{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, pub, p.caKey)
	if err != nil {
		return vaultCert{}, fmt.Errorf("vault: 500 create certificate: %w", err)
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return vaultCert{}, fmt.Errorf("vault: 500 parse certificate: %w", err)
	}
	c := vaultCert{notBefore: tmpl.NotBefore, expires: tmpl.NotAfter, Certificate: gatehouse.Certificate{
		Serial:         FormatSerial(tmpl.SerialNumber),
		CertificatePEM: encodePEM("CERTIFICATE", der),
		CAChainPEM:     p.caPEM,
		Warnings:       warnings,
	}}
	if !role.NoStore {
		p.record(c.Certificate, x)
	}
	return c, nil
}

// record keeps the certificate for listing and revocation, without its key:
// Vault never stores the private keys it hands out.
func (p *PKI) record(c gatehouse.Certificate, x *x509.Certificate) {
	c.PrivateKeyPEM, c.Warnings = "", nil
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issued[c.Serial] = &storedCert{Certificate: c, x509: x}
	p.order = append(p.order, c.Serial)
}

// revoke marks a certificate revoked and returns when that happened; a
// second revocation reports the first one's time, as Vault does.
func (p *PKI) revoke(serial string) (time.Time, error) {
	s := normalizeVaultSerial(serial)
	if s == "" {
		return time.Time{}, vaultBadRequest("The serial number or certificate to revoke must be provided.")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.issued[s]; !ok {
		return time.Time{}, &vaultError{status: 400, msg: fmt.Sprintf("certificate with serial %s not found", vaultShorten(serial, 80)), err: gatehouse.ErrBackendNotFound}
	}
	if at, ok := p.revoked[s]; ok {
		return at, nil
	}
	at := time.Now()
	p.revoked[s] = at
	p.revokes = append(p.revokes, s)
	return at, nil
}

// normalizeVaultSerial accepts the spellings Vault accepts: colon or hyphen
// separated, either case.
func normalizeVaultSerial(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", ":")
}

// Issued lists the stored certificates for commonName issued at or after
// since (revoked ones included), the way gatehouse's vault client reads
// LIST certs/detailed (vault.Client.Issued): a certificate counts from its
// NotBefore plus the role's backdating, since OpenBao backdates NotBefore
// (30 s by default), less a minute the client allows for clock skew.
// Certificates of a no_store role are not there, as in OpenBao.
func (p *PKI) Issued(ctx context.Context, commonName string, since time.Time) ([]gatehouse.IssuedCert, error) {
	if err := p.enter(ctx, "vault"); err != nil {
		return nil, err
	}
	from := since.Add(-p.Role().backdate() - issuedSkew)
	var out []gatehouse.IssuedCert
	for _, c := range p.stored() {
		x := c.x509
		if x.Subject.CommonName == commonName && !x.NotBefore.Before(from) {
			out = append(out, gatehouse.IssuedCert{Serial: c.Serial, CommonName: commonName, NotBefore: x.NotBefore, NotAfter: x.NotAfter})
		}
	}
	return out, nil
}

// stored returns the stored certificates in issue order.
func (p *PKI) stored() []*storedCert {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*storedCert, 0, len(p.order))
	for _, s := range p.order {
		out = append(out, p.issued[s])
	}
	return out
}

// Live returns the stored certificates that are not revoked.
func (p *PKI) Live() []gatehouse.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []gatehouse.Certificate
	for _, s := range p.order {
		if _, gone := p.revoked[s]; !gone {
			out = append(out, p.issued[s].Certificate)
		}
	}
	return out
}

// Certificates returns the stored certificates in issue order, without keys.
func (p *PKI) Certificates() []gatehouse.Certificate {
	var out []gatehouse.Certificate
	for _, c := range p.stored() {
		out = append(out, c.Certificate)
	}
	return out
}

// Revoked returns the serials of revoked certificates in revocation order.
func (p *PKI) Revoked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.revokes...)
}

// Len returns the number of stored certificates.
func (p *PKI) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.issued)
}

// CACertPEM returns the root CA certificate as PEM.
func (p *PKI) CACertPEM() string { return p.caPEM }

// FormatSerial formats a serial number the way Vault reports it: lower-case
// hex bytes separated by colons.
func FormatSerial(n *big.Int) string {
	b := n.Bytes()
	parts := make([]string, len(b))
	for i := range b {
		parts[i] = hex.EncodeToString(b[i : i+1])
	}
	return strings.Join(parts, ":")
}

// randomSerial returns a positive 128-bit serial, as CAs use to make serials
// unguessable.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	if n.Sign() == 0 {
		n.SetInt64(1) // RFC 5280 wants a positive serial
	}
	return n, nil
}

func encodePEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// vaultShorten keeps echoed input bounded in error messages.
func vaultShorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
