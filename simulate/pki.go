package simulate

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"time"

	"gatehouse"
)

var _ gatehouse.PKI = (*PKI)(nil)

// CACommonName is the subject common name of the simulated root CA.
const CACommonName = "gatehouse simulated root CA"

// IssuedTTL is the validity of issued certificates when no ttl is asked for.
const IssuedTTL = 365 * 24 * time.Hour

// commonNamePattern is a hostname, because Vault roles enforce hostnames by
// default and the common name also goes into the DNS SANs.
var commonNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// PKI simulates a Vault/OpenBao PKI secrets engine with a real root CA, so
// issued certificates verify like production ones. Its role behaves as one
// configured with use_csr_common_name=false: the common name of a signed
// certificate is the one asked for, never the CSR's. It is safe for
// concurrent use.
type PKI struct {
	Faults

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  string

	mu      sync.Mutex
	issued  map[string]gatehouse.Certificate // serial → certificate, never with its key
	order   []string                         // serials in issue order
	revoked map[string]time.Time             // serial → revocation time
	revokes []string                         // serials in revocation order
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

// NewPKI returns a PKI with a freshly generated ECDSA P-256 root CA.
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
		issued:  make(map[string]gatehouse.Certificate),
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

// Issue answers like POST /v1/pki/issue/<role> with private_key_format=pkcs8.
// Like Vault it is not idempotent: every call is a new key and serial.
func (p *PKI) Issue(ctx context.Context, commonName string) (gatehouse.Certificate, error) {
	return p.call(ctx, func() (gatehouse.Certificate, error) {
		c, err := p.issue(commonName, 0, true)
		return c.Certificate, err
	})
}

// Sign answers like POST /v1/pki/sign/<role>: it checks the CSR's signature
// and certifies the CSR's public key under commonName. The certificate comes
// without a private key, since the key never left the device.
func (p *PKI) Sign(ctx context.Context, commonName, csrPEM string) (gatehouse.Certificate, error) {
	return p.call(ctx, func() (gatehouse.Certificate, error) {
		c, err := p.sign(commonName, csrPEM, 0)
		return c.Certificate, err
	})
}

// Revoke answers like POST /v1/pki/revoke. As in Vault, revoking twice
// succeeds, and an unknown serial is a 400 ("certificate with serial ... not
// found"); here that error also wraps gatehouse.ErrBackendNotFound.
func (p *PKI) Revoke(ctx context.Context, serial string) error {
	_, err := p.call(ctx, func() (gatehouse.Certificate, error) {
		_, err := p.revoke(serial)
		return gatehouse.Certificate{}, err
	})
	return err
}

// call runs one state-changing operation behind the in-process faults.
func (p *PKI) call(ctx context.Context, op func() (gatehouse.Certificate, error)) (gatehouse.Certificate, error) {
	if err := p.enter(ctx, "vault"); err != nil {
		return gatehouse.Certificate{}, err
	}
	c, err := op()
	if err != nil {
		return gatehouse.Certificate{}, err
	}
	if err := p.lose("vault"); err != nil {
		return gatehouse.Certificate{}, err
	}
	return c, nil
}

// vaultCert is a new certificate with what Vault reports beside it.
type vaultCert struct {
	gatehouse.Certificate
	keyType string // private_key_type: "ec", or "" when signed from a CSR
	expires time.Time
}

// issue makes a key pair and certificate. ttl 0 means IssuedTTL; pkcs8
// chooses Vault's private_key_format=pkcs8 over its default SEC1 "der".
func (p *PKI) issue(cn string, ttl time.Duration, pkcs8 bool) (vaultCert, error) {
	if err := validateCommonName(cn); err != nil {
		return vaultCert{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return vaultCert{}, fmt.Errorf("vault: 500 generate key: %w", err)
	}
	keyPEM, err := marshalVaultKey(key, pkcs8)
	if err != nil {
		return vaultCert{}, err
	}
	c, err := p.certify(cn, &key.PublicKey, ttl)
	if err != nil {
		return vaultCert{}, err
	}
	c.PrivateKeyPEM, c.keyType = keyPEM, "ec"
	return c, nil
}

func marshalVaultKey(key *ecdsa.PrivateKey, pkcs8 bool) (string, error) {
	if !pkcs8 {
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return "", fmt.Errorf("vault: 500 marshal key: %w", err)
		}
		return encodePEM("EC PRIVATE KEY", der), nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("vault: 500 marshal key: %w", err)
	}
	return encodePEM("PRIVATE KEY", der), nil
}

// sign certifies the public key of a CSR whose signature verifies.
func (p *PKI) sign(cn, csrPEM string, ttl time.Duration) (vaultCert, error) {
	if err := validateCommonName(cn); err != nil {
		return vaultCert{}, err
	}
	csr, err := parseVaultCSR(csrPEM)
	if err != nil {
		return vaultCert{}, err
	}
	return p.certify(cn, csr.PublicKey, ttl)
}

// parseVaultCSR refuses what Vault's sign endpoint refuses, with its wording.
func parseVaultCSR(s string) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, vaultBadRequest("csr contains no data")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, vaultBadRequest("certificate request could not be parsed: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, vaultBadRequest("request signature invalid: %v", err)
	}
	if !vaultAcceptsKey(csr.PublicKey) {
		return nil, vaultBadRequest("role requires keys of type rsa (2048+ bits), ec (P-256 or P-384) or ed25519")
	}
	return csr, nil
}

func vaultAcceptsKey(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256() || k.Curve == elliptic.P384()
	case *rsa.PublicKey:
		return k.N.BitLen() >= 2048
	case ed25519.PublicKey:
		return true
	}
	return false
}

// certify signs a leaf certificate for pub and records it.
func (p *PKI) certify(cn string, pub crypto.PublicKey, ttl time.Duration) (vaultCert, error) {
	serial, err := randomSerial()
	if err != nil {
		return vaultCert{}, fmt.Errorf("vault: 500 %w", err)
	}
	tmpl := leafTemplate(cn, serial, ttl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, pub, p.caKey)
	if err != nil {
		return vaultCert{}, fmt.Errorf("vault: 500 create certificate: %w", err)
	}
	c := vaultCert{expires: tmpl.NotAfter, Certificate: gatehouse.Certificate{
		Serial:         FormatSerial(serial),
		CertificatePEM: encodePEM("CERTIFICATE", der),
		CAChainPEM:     p.caPEM,
	}}
	p.record(c.Certificate)
	return c, nil
}

func leafTemplate(cn string, serial *big.Int, ttl time.Duration) *x509.Certificate {
	if ttl <= 0 {
		ttl = IssuedTTL
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    now.Add(-time.Minute), // tolerate device clocks slightly behind
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// record keeps the certificate for revocation, without its key: Vault never
// stores the private keys it hands out.
func (p *PKI) record(c gatehouse.Certificate) {
	c.PrivateKeyPEM = ""
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issued[c.Serial] = c
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

// Issued lists stored certificates for commonName valid from since on, like
// OpenBao's LIST /v1/pki/certs/detailed filtered by the caller.
func (p *PKI) Issued(ctx context.Context, commonName string, since time.Time) ([]gatehouse.IssuedCert, error) {
	if err := p.enter(ctx, "vault"); err != nil {
		return nil, err
	}
	var out []gatehouse.IssuedCert
	for _, c := range p.Certificates() {
		x, err := parseVaultCertificate(c.CertificatePEM)
		if err != nil {
			return nil, err
		}
		if x.Subject.CommonName == commonName && !x.NotBefore.Before(since) {
			out = append(out, gatehouse.IssuedCert{Serial: c.Serial, CommonName: commonName, NotBefore: x.NotBefore, NotAfter: x.NotAfter})
		}
	}
	return out, nil
}

// Live returns the certificates that are neither revoked nor expired.
func (p *PKI) Live() []gatehouse.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []gatehouse.Certificate
	for _, s := range p.order {
		if _, gone := p.revoked[s]; !gone {
			out = append(out, p.issued[s])
		}
	}
	return out
}

// Certificates returns the issued certificates in issue order, without keys.
func (p *PKI) Certificates() []gatehouse.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]gatehouse.Certificate, 0, len(p.order))
	for _, s := range p.order {
		out = append(out, p.issued[s])
	}
	return out
}

// Revoked returns the serials of revoked certificates in revocation order.
func (p *PKI) Revoked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.revokes...)
}

// Len returns the number of issued certificates.
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

func validateCommonName(cn string) error {
	switch {
	case cn == "":
		return vaultBadRequest(`the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`)
	case len(cn) > 64:
		return vaultBadRequest("common_name %q is longer than 64 characters", vaultShorten(cn, 80))
	case !commonNamePattern.MatchString(cn):
		return vaultBadRequest("common_name %q not allowed by this role", vaultShorten(cn, 80))
	}
	return nil
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
