package simulate

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// VaultMountMaxTTL is OpenBao's default lease TTL and max lease TTL of a
// mount (vault/expiration.go: maxLeaseTTL = 32 * 24 * time.Hour). A role
// without ttl or max_ttl falls back to it.
const VaultMountMaxTTL = 32 * 24 * time.Hour

// IssuedTTL is the validity of certificates issued without a ttl by a role
// without one: the mount's default lease TTL.
const IssuedTTL = VaultMountMaxTTL

// VaultRole is the part of an OpenBao PKI role (pki/roles/<name>) that
// decides what issue and sign do. DefaultVaultRole gives a role as
// `bao write pki/roles/x` creates it with no parameters.
type VaultRole struct {
	// KeyType is "rsa", "ec", "ed25519" or "any" (sign only, unless the
	// issue request names a key_type).
	KeyType string
	// KeyBits is the key size issue generates and the minimum sign accepts;
	// 0 means the type's default (rsa 2048, ec 256).
	KeyBits int

	// UseCSRCommonName and UseCSRSANs make sign take the CN and the SANs
	// from the CSR instead of the request.
	UseCSRCommonName, UseCSRSANs bool

	// Which names the role certifies (see validateNames).
	AllowAnyName              bool
	AllowedDomains            []string
	AllowBareDomains          bool
	AllowSubdomains           bool
	AllowGlobDomains          bool
	AllowLocalhost            bool
	AllowWildcardCertificates bool
	EnforceHostnames          bool
	AllowIPSANs               bool
	CNValidations             []string // "email", "hostname" or "disabled"
	RequireCN                 bool

	// TTL and MaxTTL of certificates; 0 falls back to the mount's
	// (VaultMountMaxTTL).
	TTL, MaxTTL time.Duration
	// NotBeforeDuration backdates NotBefore; 0 still backdates 30 s.
	NotBeforeDuration time.Duration
	// NoStore keeps certificates out of storage: they cannot be listed or
	// revoked by serial.
	NoStore bool
	// ServerFlag and ClientFlag add the serverAuth and clientAuth EKUs.
	ServerFlag, ClientFlag bool
}

// DefaultVaultRole is what OpenBao stores for a new role created without
// parameters (builtin/logical/pki/path_roles.go, pathRoles field defaults;
// key_bits 0 becomes 2048 for rsa in validateRole). Such a role refuses a
// bare name like "gw-01", wants RSA CSRs, and signs the CSR's own names.
func DefaultVaultRole() VaultRole {
	return VaultRole{
		KeyType:                   "rsa",
		KeyBits:                   2048,
		UseCSRCommonName:          true,
		UseCSRSANs:                true,
		AllowLocalhost:            true,
		AllowWildcardCertificates: true,
		EnforceHostnames:          true,
		AllowIPSANs:               true,
		CNValidations:             []string{"email", "hostname"},
		RequireCN:                 true,
		NotBeforeDuration:         30 * time.Second,
		ServerFlag:                true,
		ClientFlag:                true,
	}
}

// RecommendedVaultRole is the role gatehouse's documentation recommends:
// the fewest changes to the defaults with which both issue and sign of a
// gateway name such as "gw-01" work and carry the approved name:
//
//	bao write pki/roles/gatehouse key_type=ec key_bits=256 allow_any_name=true \
//	    use_csr_common_name=false use_csr_sans=false max_ttl=8760h
//
// key_type=any would sign any CSR but cannot issue (OpenBao refuses issue
// with key_type=any unless the request names a key type), so the agent's
// ECDSA P-256 CSR decides: ec with 256 bits does both.
func RecommendedVaultRole() VaultRole {
	r := DefaultVaultRole()
	r.KeyType, r.KeyBits = "ec", 256
	r.AllowAnyName = true
	r.UseCSRCommonName, r.UseCSRSANs = false, false
	r.MaxTTL = 365 * 24 * time.Hour
	return r
}

// validate refuses what OpenBao's validateRole refuses, and fills in key
// bits the way certutil.ValidateDefaultOrValueKeyTypeSignatureLength does.
func (r VaultRole) validate() (VaultRole, error) {
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return r, vaultBadRequest(`"ttl" value must be less than "max_ttl" value`)
	}
	switch r.KeyType {
	case "rsa":
		r.KeyBits = cmpOr(r.KeyBits, 2048)
		if !slices.Contains([]int{2048, 3072, 4096, 8192}, r.KeyBits) {
			return r, vaultBadRequest("unsupported bit length for RSA key: %d", r.KeyBits)
		}
	case "ec":
		r.KeyBits = cmpOr(r.KeyBits, 256)
		if !slices.Contains([]int{224, 256, 384, 521}, r.KeyBits) {
			return r, vaultBadRequest("unsupported bit length for EC key: %d", r.KeyBits)
		}
	case "ed25519", "any":
		r.KeyBits = 0
	default:
		return r, vaultBadRequest("unknown key type %s", r.KeyType)
	}
	if len(r.CNValidations) == 0 {
		r.CNValidations = []string{"email", "hostname"}
	}
	return r, nil
}

// backdate is how far NotBefore lies before the moment of issue: OpenBao's
// certutil.createCertificate backdates 30 s unless not_before_duration is set.
func (r VaultRole) backdate() time.Duration {
	if r.NotBeforeDuration > 0 {
		return r.NotBeforeDuration
	}
	return 30 * time.Second
}

// responseData is the role as GET pki/roles/<name> shows it (roleEntry's
// ToResponseData): durations in whole seconds.
func (r VaultRole) responseData() map[string]any {
	return map[string]any{
		"key_type": r.KeyType, "key_bits": r.KeyBits, "signature_bits": 0,
		"use_csr_common_name": r.UseCSRCommonName, "use_csr_sans": r.UseCSRSANs,
		"allow_any_name": r.AllowAnyName, "allowed_domains": nonNil(r.AllowedDomains),
		"allow_bare_domains": r.AllowBareDomains, "allow_subdomains": r.AllowSubdomains,
		"allow_glob_domains": r.AllowGlobDomains, "allow_localhost": r.AllowLocalhost,
		"allow_wildcard_certificates": r.AllowWildcardCertificates,
		"enforce_hostnames":           r.EnforceHostnames, "allow_ip_sans": r.AllowIPSANs,
		"cn_validations": nonNil(r.CNValidations), "require_cn": r.RequireCN,
		"ttl": seconds(r.TTL), "max_ttl": seconds(r.MaxTTL),
		"not_before_duration": seconds(r.NotBeforeDuration), "no_store": r.NoStore,
		"server_flag": r.ServerFlag, "client_flag": r.ClientFlag,
		"generate_lease": false, "issuer_ref": "default",
		"key_usage": []string{"DigitalSignature", "KeyAgreement", "KeyEncipherment"},
	}
}

func (r VaultRole) String() string {
	return fmt.Sprintf("role{key_type=%s key_bits=%d use_csr_common_name=%t use_csr_sans=%t allow_any_name=%t allowed_domains=%s}",
		r.KeyType, r.KeyBits, r.UseCSRCommonName, r.UseCSRSANs, r.AllowAnyName, strings.Join(r.AllowedDomains, ","))
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
