package simulate

import (
	"regexp"
	"slices"
	"strings"
)

// The name checks of OpenBao's builtin/logical/pki/cert_util.go
// (validateNames, validateCommonName, validateWildcardDomain). The idna
// conversion is reduced to ASCII: a non-ASCII name is refused here, where
// OpenBao would punycode it first.

var (
	vaultLabel        = `([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])`
	vaultHostname     = regexp.MustCompile(`^(\*\.)?(` + vaultLabel + `\.)*` + vaultLabel + `\.?$`)
	vaultWildcardPart = regexp.MustCompile(`^(\*|\*` + vaultLabel + `|` + vaultLabel + `\*|` + vaultLabel + `\*` + vaultLabel + `)$`)
)

// dnsLengthOK is idna's VerifyDNSLength: labels of 1..63 bytes, 253 in all.
func dnsLengthOK(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r > 0x7e })
}

// hostnameOK is what enforce_hostnames demands of a name without its
// wildcard label or email local part.
func hostnameOK(name string) bool {
	return isASCII(name) && dnsLengthOK(name) && vaultHostname.MatchString(name)
}

// commonNameAllowed is validateCommonName: the name checks, then
// cn_validations ("disabled", "email", "hostname").
func (r VaultRole) commonNameAllowed(cn string) bool {
	if len(r.CNValidations) == 1 && r.CNValidations[0] == "disabled" {
		return true
	}
	if r.badName([]string{cn}) != "" {
		return false
	}
	if strings.Contains(cn, "@") {
		return slices.Contains(r.CNValidations, "email")
	}
	return slices.Contains(r.CNValidations, "hostname")
}

// badName returns the first name the role does not allow, or "".
func (r VaultRole) badName(names []string) string {
	for _, n := range names {
		if !r.nameAllowed(n) {
			return n
		}
	}
	return ""
}

// vaultName is a requested name taken apart the way validateNames does.
type vaultName struct {
	full, reduced, wildcardLabel string
	email, wildcard              bool
}

func splitVaultName(name string) (vaultName, bool) {
	n := vaultName{full: name, reduced: name}
	if strings.Contains(name, "@") {
		parts := strings.Split(name, "@")
		if len(parts) != 2 {
			return n, false
		}
		n.reduced, n.email = parts[1], true
	}
	if strings.Contains(n.reduced, "*") {
		n.wildcard = true
		if strings.Count(n.reduced, "*") > 1 {
			return n, false
		}
		label, rest, _ := strings.Cut(n.reduced, ".")
		if strings.Contains(rest, "*") {
			return n, false
		}
		n.wildcardLabel, n.reduced = label, rest
	}
	return n, !(n.email && n.wildcard)
}

func (r VaultRole) nameAllowed(name string) bool {
	n, ok := splitVaultName(name)
	switch {
	case !ok, n.wildcard && !r.AllowWildcardCertificates:
		return false
	case r.EnforceHostnames && n.reduced != "" && !hostnameOK(n.reduced):
		return false
	case r.EnforceHostnames && n.wildcard && !vaultWildcardPart.MatchString(n.wildcardLabel):
		return false
	case r.AllowAnyName:
		return true
	}
	return r.localhostAllowed(n) || r.domainAllowed(n)
}

func (r VaultRole) localhostAllowed(n vaultName) bool {
	if !r.AllowLocalhost {
		return false
	}
	for _, base := range []string{"localhost", "localdomain"} {
		if n.reduced == base {
			return true
		}
		if r.AllowSubdomains && (strings.HasSuffix(n.reduced, "."+base) || n.wildcard && n.reduced == base) {
			return true
		}
	}
	return false
}

func (r VaultRole) domainAllowed(n vaultName) bool {
	for _, d := range r.AllowedDomains {
		switch {
		case d == "":
		case r.AllowBareDomains && (strings.EqualFold(n.full, d) || n.email && strings.EqualFold(n.reduced, d)):
			return true
		case r.AllowSubdomains && (strings.HasSuffix(n.reduced, "."+d) || n.wildcard && strings.EqualFold(n.reduced, d)):
			return true
		case r.AllowGlobDomains && strings.Contains(d, "*") && globMatch(d, n.full):
			return true
		}
	}
	return false
}

// globMatch is ryanuber/go-glob's Glob: '*' matches any run of
// characters, dots included.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
