package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gatehouse/rest"
)

// mountMaxTTL is OpenBao's and Vault's default max lease TTL of a mount
// (vault/expiration.go maxLeaseTTL), which caps certificates of a role
// without max_ttl unless the mount is tuned.
const mountMaxTTL = 32 * 24 * time.Hour

// Check proves that Vault is reachable and the credentials work (it looks
// up the client's own token, logging in first if needed), then reads the
// role and judges its settings against the configured mode: settings with
// which provisioning cannot work are errors; what is merely worth knowing,
// such as a role the token may not read or a TTL OpenBao will cap, are
// notes. It is used by `gatehouse config check --online`.
func (c *Client) Check(ctx context.Context) (notes []string, err error) {
	if err := c.call(ctx, http.MethodGet, "/v1/auth/token/lookup-self", nil, nil); err != nil {
		return nil, err
	}
	role, err := c.ReadRole(ctx)
	switch {
	case rest.StatusOf(err) == http.StatusForbidden:
		notes = append(notes, fmt.Sprintf("cannot read role %s on mount %s (the policy does not allow read on %s/roles/%s): role settings not checked; "+
			"with a token limited like this, a wrong mount or role name also shows as 403", c.cfg.Role, c.cfg.Mount, c.cfg.Mount, c.cfg.Role))
		err = nil
	case err != nil:
		return nil, err
	default:
		var problems []error
		notes, problems = c.judge(role)
		err = errors.Join(problems...)
	}
	return append(notes, c.listingNote(ctx)), err
}

// judge returns what the role means for the configured mode.
func (c *Client) judge(r Role) (notes []string, problems []error) {
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("vault: role %s on mount %s: "+format, append([]any{c.cfg.Role, c.cfg.Mount}, args...)...))
	}
	if c.cfg.Sign {
		judgeSign(r, bad)
	} else if r.KeyType == "any" {
		bad(`key_type=any cannot issue (OpenBao: "role key type \"any\" not allowed for issuing certificates without providing key_type"); set key_type=ec key_bits=256, or use sign mode`)
	}
	if !r.allowsName(sampleName) {
		bad("a gateway name such as %q is not allowed (OpenBao: \"common name %s not allowed by this role\"); set allow_any_name=true, "+
			"or allowed_domains with allow_glob_domains=true (e.g. \"gw-*\")", sampleName, sampleName)
	}
	if r.NoStore {
		bad("no_store=true: certificates are not stored, so gatehouse can neither revoke them by serial nor find them after a lost answer; set no_store=false")
	}
	if !r.ClientFlag {
		notes = append(notes, fmt.Sprintf("role %s has client_flag=false: certificates lack the clientAuth extended key usage", c.cfg.Role))
	}
	return append(notes, c.ttlNotes(r)...), problems
}

// judgeSign holds the role against the agent's CSR: an ECDSA P-256 key and
// a placeholder name the certificate must not carry.
func judgeSign(r Role, bad func(string, ...any)) {
	switch {
	case r.KeyType == "ec" && r.KeyBits > 256:
		bad("key_bits=%d refuses the agent's ECDSA P-256 CSR (OpenBao: \"role requires a minimum of a %d-bit key\"); set key_bits=256", r.KeyBits, r.KeyBits)
	case r.KeyType != "ec" && r.KeyType != "any":
		bad("key_type=%s refuses the agent's ECDSA P-256 CSR (OpenBao: \"role requires keys of type %s\"); set key_type=ec key_bits=256, or key_type=any", r.KeyType, r.KeyType)
	}
	if r.UseCSRCommonName {
		bad("use_csr_common_name=true makes the certificate carry the CSR's CN, not the approved name; set use_csr_common_name=false")
	}
	if r.UseCSRSANs {
		bad("use_csr_sans=true copies the CSR's SANs into the certificate; set use_csr_sans=false")
	}
}

// ttlNotes says when OpenBao will cap the configured TTL.
func (c *Client) ttlNotes(r Role) []string {
	ttl, ok := parseTTL(c.cfg.TTL)
	if !ok {
		return nil
	}
	switch maxTTL := time.Duration(r.MaxTTL); {
	case maxTTL > 0 && ttl > maxTTL:
		return []string{fmt.Sprintf("TTL %s exceeds role %s's max_ttl %s: Vault issues certificates for %s instead (and says so in a warning)", c.cfg.TTL, c.cfg.Role, maxTTL, maxTTL)}
	case maxTTL == 0 && ttl > mountMaxTTL:
		return []string{fmt.Sprintf("TTL %s exceeds the mount's max lease TTL (%s unless the mount is tuned), which caps certificates since role %s has no max_ttl", c.cfg.TTL, mountMaxTTL, c.cfg.Role)}
	}
	return nil
}

// listingNote says whether the token may list certificates, which a step
// needs to find and revoke what it issued when the answer was lost.
func (c *Client) listingNote(ctx context.Context) string {
	m := c.cfg.Mount
	detailed := c.listOnce(ctx, "certs/detailed")
	if detailed == nil {
		return fmt.Sprintf("LIST %s/certs/detailed is allowed: retries after a lost answer can find what was issued", m)
	}
	plain := c.listOnce(ctx, "certs")
	switch {
	case plain != nil && rest.StatusOf(plain) == http.StatusForbidden:
		return fmt.Sprintf("the policy allows list on neither %s/certs/detailed nor %s/certs: after a lost answer gatehouse cannot find and revoke a duplicate certificate; "+
			"allow list on %s/certs/detailed (OpenBao) or %s/certs (HashiCorp Vault)", m, m, m, m)
	case plain != nil:
		return fmt.Sprintf("cannot list certificates on %s: %v", m, plain)
	case unsupportedPath(detailed):
		return fmt.Sprintf("%s/certs/detailed does not exist (HashiCorp Vault): retries list %s/certs and read each certificate, which is slower", m, m)
	}
	return fmt.Sprintf("the policy does not allow list on %s/certs/detailed: retries list %s/certs and read each certificate, which is slower; allow list on %s/certs/detailed", m, m, m)
}

// listOnce lists one entry of path; an empty list is no error.
func (c *Client) listOnce(ctx context.Context, path string) error {
	err := c.call(ctx, http.MethodGet, c.pkiPath(path)+"?list=true&limit=1", nil, nil)
	if emptyList(err) {
		return nil
	}
	return err
}

// emptyList is Vault's 404 for a LIST that found nothing: no message
// (sdk/logical RespondErrorCommon), unlike a path that does not exist.
func emptyList(err error) bool {
	return rest.StatusOf(err) == http.StatusNotFound && !unsupportedPath(err)
}

// unsupportedPath is a 404 for a path the mount does not serve, or a 405
// for an operation it does not, as HashiCorp Vault answers certs/detailed.
func unsupportedPath(err error) bool {
	switch rest.StatusOf(err) {
	case http.StatusMethodNotAllowed:
		return true
	case http.StatusNotFound:
		m := messageOf(err)
		return m != "" && m != `{"errors":[]}`
	}
	return false
}
