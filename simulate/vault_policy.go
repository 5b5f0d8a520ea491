package simulate

import (
	"slices"
	"strings"
)

// VaultPolicy is a Vault ACL policy: path patterns (without /v1/) to
// capabilities ("read", "list", "create", "update", "delete", "deny").
// A pattern ending in "*" matches every path with that prefix, and "+"
// matches exactly one path segment, as in Vault's policy syntax.
type VaultPolicy map[string][]string

// GatehouseVaultPolicy is the policy gatehouse needs on a PKI mount and
// role: issue, sign and revoke; read the role (for `config check`); list
// certificates (certs/detailed on OpenBao, certs on Vault) and read them,
// to find what a step issued when the answer was lost.
func GatehouseVaultPolicy(mount, role string) VaultPolicy {
	return VaultPolicy{
		mount + "/issue/" + role:  {"update"},
		mount + "/sign/" + role:   {"update"},
		mount + "/revoke":         {"update"},
		mount + "/roles/" + role:  {"read"},
		mount + "/certs":          {"list"},
		mount + "/certs/detailed": {"list"},
		mount + "/cert/*":         {"read"},
	}
}

// vaultDefaultPolicy is the part of Vault's built-in "default" policy every
// token carries that the simulator serves.
var vaultDefaultPolicy = VaultPolicy{
	"auth/token/lookup-self": {"read"},
	"auth/token/renew-self":  {"update"},
}

// allows reports whether the policy grants op ("read", "list", "update",
// "delete") on path. An explicit deny wins; the most specific matching
// pattern decides, as Vault's ACL does.
func (p VaultPolicy) allows(path, op string) bool {
	caps, ok := p.match(path)
	if !ok || slices.Contains(caps, "deny") {
		return false
	}
	if op == "update" && slices.Contains(caps, "create") {
		return true
	}
	return slices.Contains(caps, op)
}

// match finds the capabilities of the exact path, else of the longest
// matching pattern.
func (p VaultPolicy) match(path string) ([]string, bool) {
	if caps, ok := p[path]; ok {
		return caps, true
	}
	best, found := "", false
	for pattern := range p {
		if vaultPathMatch(pattern, path) && (!found || len(pattern) > len(best)) {
			best, found = pattern, true
		}
	}
	return p[best], found
}

func vaultPathMatch(pattern, path string) bool {
	prefix, glob := strings.CutSuffix(pattern, "*")
	pp, sp := strings.Split(prefix, "/"), strings.Split(path, "/")
	if len(sp) < len(pp) || !glob && len(sp) != len(pp) {
		return false
	}
	for i, seg := range pp {
		last := i == len(pp)-1
		switch {
		case seg == "+":
		case last && glob:
			if !strings.HasPrefix(sp[i], seg) {
				return false
			}
		case seg != sp[i]:
			return false
		}
	}
	return true
}
