package simulate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// IssuedTTL is the validity of issued certificates.
const IssuedTTL = 365 * 24 * time.Hour

// commonNamePattern is a hostname, because Vault roles enforce hostnames by
// default and the common name also goes into the DNS SANs.
var commonNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// PKI simulates a Vault/OpenBao PKI secrets engine with a real root CA, so
// issued certificates verify like production ones. It is safe for concurrent use.
type PKI struct {
	Faults

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  string

	mu     sync.Mutex
	issued map[string]gatehouse.Certificate // serial → certificate, never with its key
	order  []string                         // serials in issue order
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
		caCert: cert,
		caKey:  key,
		caPEM:  encodePEM("CERTIFICATE", der),
		issued: make(map[string]gatehouse.Certificate),
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
	if err := p.enter(ctx, "vault"); err != nil {
		return gatehouse.Certificate{}, err
	}
	if err := validateCommonName(commonName); err != nil {
		return gatehouse.Certificate{}, err
	}
	c, err := p.issue(commonName)
	if err != nil {
		return gatehouse.Certificate{}, fmt.Errorf("vault: 500 %w", err)
	}
	p.record(c)
	if err := p.lose("vault"); err != nil {
		return gatehouse.Certificate{}, err
	}
	return c, nil
}

func (p *PKI) issue(cn string) (gatehouse.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return gatehouse.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return gatehouse.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, leafTemplate(cn, serial), p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return gatehouse.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return gatehouse.Certificate{}, fmt.Errorf("marshal key: %w", err)
	}
	return gatehouse.Certificate{
		Serial:         FormatSerial(serial),
		CertificatePEM: encodePEM("CERTIFICATE", der),
		PrivateKeyPEM:  encodePEM("PRIVATE KEY", keyDER),
		CAChainPEM:     p.caPEM,
	}, nil
}

func leafTemplate(cn string, serial *big.Int) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{cn},
		NotBefore:    now.Add(-time.Minute), // tolerate device clocks slightly behind
		NotAfter:     now.Add(IssuedTTL),
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

// Issued returns the issued certificates in issue order, without keys.
func (p *PKI) Issued() []gatehouse.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]gatehouse.Certificate, 0, len(p.order))
	for _, s := range p.order {
		out = append(out, p.issued[s])
	}
	return out
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
		return fmt.Errorf("vault: 400 common_name is required")
	case len(cn) > 64:
		return fmt.Errorf("vault: 400 common_name %q is longer than 64 characters", truncate(cn, 80))
	case !commonNamePattern.MatchString(cn):
		return fmt.Errorf("vault: 400 common_name %q not allowed by this role", cn)
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
