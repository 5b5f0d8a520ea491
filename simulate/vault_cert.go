package simulate

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
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// certOrder is one issue or sign request, as the role sees it.
type certOrder struct {
	sign       bool
	commonName string
	csr        string
	ttl        time.Duration // 0: the role's, else the mount's
	keyType    string        // issue only: the request's key_type, if any
	keyBits    int
	pkcs8      bool // private_key_format=pkcs8
}

// vaultSubject is what a certificate will name.
type vaultSubject struct {
	cn     string
	dns    []string
	emails []string
	ips    []net.IP
}

// issueRole applies pathIssue's key type rules (path_issue_sign.go): a role
// with key_type=any issues only when the request names a key type; a role
// with a fixed type ignores the request's, with a warning.
func issueRole(role VaultRole, o certOrder) (VaultRole, []string, error) {
	if role.KeyType != "any" {
		if o.keyType != "" || o.keyBits != 0 {
			return role, []string{"parameters key_type and key_bits ignored as role had specific values"}, nil
		}
		return role, nil, nil
	}
	if o.keyType == "" {
		return role, nil, vaultBadRequest(`role key type "any" not allowed for issuing certificates without providing key_type and/or key_bits request parameters`)
	}
	role.KeyType, role.KeyBits = o.keyType, o.keyBits
	r, err := role.validate()
	var ve *vaultError
	if errors.As(err, &ve) {
		// OpenBao returns this as a Go error, which becomes a 500.
		return role, nil, &vaultError{status: 500, msg: "failed to validate role: " + ve.msg}
	}
	return r, nil, nil
}

// csrKey checks a CSR's key against the role the way signCert does
// (cert_util.go), with OpenBao's messages.
func (r VaultRole) csrKey(csr *x509.CertificateRequest) error {
	typ, bits := keyTypeOf(csr.PublicKey)
	switch {
	case typ == "":
		return vaultBadRequest("Unknown key type in CSR: %s", csr.PublicKeyAlgorithm)
	case r.KeyType != "any" && r.KeyType != typ:
		return vaultBadRequest("role requires keys of type %s", r.KeyType)
	case r.KeyType == "any" && typ == "rsa" && bits < 2048:
		return vaultBadRequest("RSA keys < 2048 bits are unsafe and not supported")
	}
	minBits := r.KeyBits
	if r.KeyType == "any" {
		minBits = map[string]int{"rsa": 2048, "ec": 224}[typ]
	}
	if typ != "ed25519" && bits < minBits {
		return vaultBadRequest("role requires a minimum of a %d-bit key, but CSR's key is %d bits", minBits, bits)
	}
	if typ == "rsa" && bits < 2048 {
		return vaultBadRequest("OpenBao requires a minimum of a 2048-bit key, but CSR's key is %d bits", bits)
	}
	return nil
}

func keyTypeOf(pub crypto.PublicKey) (string, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "rsa", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ec", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "ed25519", 0
	}
	return "", 0
}

// parseSignCSR reads the csr field as signCert does.
func parseSignCSR(s string) (*x509.CertificateRequest, error) {
	if s == "" {
		return nil, vaultBadRequest(`"csr" is empty`)
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, vaultBadRequest("csr contains no data")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, vaultBadRequest("certificate request could not be parsed: %v", err)
	}
	return csr, nil
}

// subject chooses and checks the names, as generateCreationBundle does:
// with use_csr_common_name the CSR's CN wins over the request's, and with
// use_csr_sans the CSR's SANs are taken; the CN joins the DNS SANs.
func (r VaultRole) subject(reqCN string, csr *x509.CertificateRequest) (vaultSubject, error) {
	var s vaultSubject
	if csr != nil && r.UseCSRCommonName {
		s.cn = csr.Subject.CommonName
	}
	if s.cn == "" {
		s.cn = reqCN
	}
	if s.cn == "" && r.RequireCN {
		return s, vaultBadRequest(`the common_name field is required, or must be provided in a CSR with "use_csr_common_name" set to true, unless "require_cn" is set to false`)
	}
	if csr != nil && r.UseCSRSANs {
		s.dns, s.emails = slices.Clone(csr.DNSNames), slices.Clone(csr.EmailAddresses)
	}
	if err := s.addCommonName(); err != nil {
		return s, err
	}
	if err := r.checkNames(s); err != nil {
		return s, err
	}
	return s, r.csrAddresses(&s, csr)
}

// addCommonName puts the CN among the SANs, after the idna conversion that
// refuses runes outside RFC 1034 and over-long labels (x/net/idna with
// StrictDomainName and VerifyDNSLength).
func (s *vaultSubject) addCommonName() error {
	switch {
	case s.cn == "":
		return nil
	case strings.Contains(s.cn, "@"):
		s.emails = append(s.emails, s.cn)
		return nil
	case !strings.Contains(s.cn, "*"):
		if i := strings.IndexFunc(s.cn, func(c rune) bool { return !isDomainRune(c) }); i >= 0 {
			return vaultBadRequest("idna: disallowed rune %U", []rune(s.cn[i:])[0])
		}
		if !dnsLengthOK(s.cn) {
			return vaultBadRequest("idna: invalid label %q", vaultShorten(s.cn, 80))
		}
	}
	if vaultHostname.MatchString(s.cn) {
		s.dns = append(s.dns, s.cn)
	}
	return nil
}

func isDomainRune(c rune) bool {
	return c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func (r VaultRole) checkNames(s vaultSubject) error {
	if s.cn != "" && !r.commonNameAllowed(s.cn) {
		return vaultBadRequest("common name %s not allowed by this role", vaultShorten(s.cn, 80))
	}
	if bad := r.badName(s.dns); bad != "" {
		return vaultBadRequest("subject alternate name %s not allowed by this role", vaultShorten(bad, 80))
	}
	if bad := r.badName(s.emails); bad != "" {
		return vaultBadRequest("email address %s not allowed by this role", vaultShorten(bad, 80))
	}
	return nil
}

// csrAddresses takes IP SANs from the CSR when the role uses its SANs; URI
// SANs are refused, since the simulated role allows none.
func (r VaultRole) csrAddresses(s *vaultSubject, csr *x509.CertificateRequest) error {
	if csr == nil || !r.UseCSRSANs {
		return nil
	}
	if len(csr.IPAddresses) > 0 && !r.AllowIPSANs {
		return vaultBadRequest("IP Subject Alternative Names are not allowed in this role, but was provided some via CSR")
	}
	if len(csr.URIs) > 0 {
		return vaultBadRequest("URI Subject Alternative Names are not allowed in this role, but were provided via CSR")
	}
	s.ips = csr.IPAddresses
	return nil
}

// notAfter is getCertificateNotAfter: the request's ttl, else the role's,
// else the mount's, capped at the role's max_ttl (else the mount's) with
// OpenBao's warning.
func (r VaultRole) notAfter(ttl time.Duration, now time.Time) (time.Time, []string) {
	ttl = firstNonZero(ttl, r.TTL, VaultMountMaxTTL)
	maxTTL := firstNonZero(r.MaxTTL, VaultMountMaxTTL)
	var warnings []string
	if ttl > maxTTL {
		warnings = append(warnings, fmt.Sprintf("TTL %q is longer than permitted maxTTL %q, so maxTTL is being used", ttl, maxTTL))
		ttl = maxTTL
	}
	return now.Add(ttl), warnings
}

func firstNonZero(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d != 0 {
			return d
		}
	}
	return 0
}

// leafTemplate is the certificate createCertificate/signCertificate build,
// backdated by the role's not_before_duration.
func (r VaultRole) leafTemplate(s vaultSubject, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("vault: 500 %w", err)
	}
	t := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: s.cn},
		DNSNames:       s.dns,
		EmailAddresses: s.emails,
		IPAddresses:    s.ips,
		NotBefore:      now.Add(-r.backdate()),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement | x509.KeyUsageKeyEncipherment,
	}
	if r.ServerFlag {
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if r.ClientFlag {
		t.ExtKeyUsage = append(t.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	return t, nil
}

// generateVaultKey makes the key issue hands out, of the role's type.
func generateVaultKey(keyType string, bits int) (crypto.Signer, error) {
	switch keyType {
	case "rsa":
		return rsa.GenerateKey(rand.Reader, bits)
	case "ec":
		curve := map[int]elliptic.Curve{224: elliptic.P224(), 256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
		if curve == nil {
			return nil, fmt.Errorf("unsupported EC key size %d", bits)
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unsupported key type %q", keyType)
}

// marshalVaultKey encodes a key as issue returns it: its native DER (PKCS#1
// for RSA, SEC1 for EC, PKCS#8 for Ed25519), or PKCS#8 when asked.
func marshalVaultKey(key crypto.Signer, pkcs8 bool) (string, error) {
	var (
		der []byte
		err error
		typ = "PRIVATE KEY"
	)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if !pkcs8 {
			return encodePEM("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)), nil
		}
	case *ecdsa.PrivateKey:
		if !pkcs8 {
			der, err = x509.MarshalECPrivateKey(k)
			typ = "EC PRIVATE KEY"
		}
	}
	if der == nil && err == nil {
		der, err = x509.MarshalPKCS8PrivateKey(key)
	}
	if err != nil {
		return "", fmt.Errorf("vault: 500 marshal key: %w", err)
	}
	return encodePEM(typ, der), nil
}
