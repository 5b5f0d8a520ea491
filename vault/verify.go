package vault

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gatehouse"
)

// Kinds of VerifyError, for errors.Is.
var (
	// ErrNameMismatch: the certificate does not name exactly the approved
	// name, typically because the role takes names from the CSR.
	ErrNameMismatch = errors.New("certificate does not carry the approved name")
	// ErrKeyMismatch: the certificate is for another public key.
	ErrKeyMismatch = errors.New("certificate is not for the expected key")
)

// VerifyError says what is wrong with a certificate Vault returned, and
// which role setting to change (Fix), if one explains it.
type VerifyError struct {
	Kind   error  // ErrNameMismatch or ErrKeyMismatch
	Detail string // what the certificate carries
	Fix    string // the role setting to change, or ""
	Role   string // the role's name, when the caller knows it
}

func (e *VerifyError) Error() string {
	msg := "vault: " + e.Detail
	if e.Fix != "" {
		msg += ": " + e.Fix
		if e.Role != "" {
			msg += " on role " + e.Role
		}
	}
	return msg
}

func (e *VerifyError) Unwrap() error { return e.Kind }

// The fixes for names the role took from the CSR (OpenBao's
// generateCreationBundle with use_csr_common_name / use_csr_sans).
const (
	fixCSRName = "the role signs the CSR's own name: set use_csr_common_name=false and use_csr_sans=false"
	fixCSRSANs = "the role copies the CSR's SANs: set use_csr_sans=false"
)

// Verify checks a certificate returned by Issue or Sign: it parses, its CN
// is name, its SANs are name and nothing else, and its public key is want
// (the CSR's key when signing, the returned private key's when issuing; see
// PublicKeyOf and CSRPublicKey). It is pure: it looks at nothing but its
// arguments. Client.Verify adds the role's name to the advice.
func Verify(c gatehouse.Certificate, name string, want crypto.PublicKey) error {
	cert, err := parseLeaf(c.CertificatePEM)
	if err != nil {
		return err
	}
	if err := verifyNames(cert, name); err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	switch {
	case want == nil:
		return errors.New("vault: verify: no expected public key to compare the certificate's with")
	case !ok || !pub.Equal(want):
		return &VerifyError{Kind: ErrKeyMismatch, Detail: fmt.Sprintf("certificate %s is for another public key than the gateway's", c.Serial)}
	}
	return nil
}

// Verify is the package's Verify with the configured role named in the
// advice.
func (c *Client) Verify(cert gatehouse.Certificate, name string, want crypto.PublicKey) error {
	err := Verify(cert, name, want)
	var ve *VerifyError
	if errors.As(err, &ve) {
		ve.Role = fmt.Sprintf("%s (mount %s)", c.cfg.Role, c.cfg.Mount)
	}
	return err
}

func verifyNames(cert *x509.Certificate, name string) error {
	if cn := cert.Subject.CommonName; cn != name {
		return &VerifyError{Kind: ErrNameMismatch, Fix: fixCSRName, Detail: fmt.Sprintf("certificate CN is %q, not the approved name %q", cn, name)}
	}
	if !slices.Contains(cert.DNSNames, name) {
		return &VerifyError{Kind: ErrNameMismatch, Fix: fixCSRName, Detail: fmt.Sprintf("the approved name %q is not among the certificate's DNS SANs %q", name, cert.DNSNames)}
	}
	var extra []string
	for _, d := range cert.DNSNames {
		if d != name {
			extra = append(extra, d)
		}
	}
	extra = append(extra, cert.EmailAddresses...)
	for _, ip := range cert.IPAddresses {
		extra = append(extra, ip.String())
	}
	for _, u := range cert.URIs {
		extra = append(extra, u.String())
	}
	if len(extra) > 0 {
		return &VerifyError{Kind: ErrNameMismatch, Fix: fixCSRSANs, Detail: fmt.Sprintf("certificate names more than %q: %s", name, strings.Join(extra, ", "))}
	}
	return nil
}

func parseLeaf(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("vault: returned certificate is not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("vault: returned certificate does not parse: %w", err)
	}
	return cert, nil
}

// PublicKeyOf returns the public key of a PEM private key as Issue returns
// it: PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC
// PRIVATE KEY"). An "EC PARAMETERS" block before the key is skipped.
func PublicKeyOf(privateKeyPEM string) (crypto.PublicKey, error) {
	rest := []byte(privateKeyPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("vault: no PEM private key")
		}
		if block.Type == "EC PARAMETERS" {
			continue
		}
		key, err := parsePrivateKey(block)
		if err != nil {
			return nil, err // never echoes the key
		}
		return key.Public(), nil
	}
}

func parsePrivateKey(block *pem.Block) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("vault: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %s does not parse: %w", strings.ToLower(block.Type), err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("vault: unsupported private key type %T", key)
	}
	return signer, nil
}

// CSRPublicKey returns the public key of a PEM certificate request, the key
// a signed certificate must carry.
func CSRPublicKey(csrPEM string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil || !strings.HasSuffix(block.Type, "CERTIFICATE REQUEST") {
		return nil, errors.New("vault: not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("vault: certificate request does not parse: %w", err)
	}
	return csr.PublicKey, nil
}
