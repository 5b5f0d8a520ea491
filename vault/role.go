package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/rest"
)

// defaultBackdate is how far OpenBao and Vault backdate NotBefore when a
// role sets no not_before_duration (certutil's createCertificate).
const defaultBackdate = 30 * time.Second

// Role is a PKI role's settings as GET {mount}/roles/{name} shows them (the
// fields gatehouse depends on; builtin/logical/pki/path_roles.go).
type Role struct {
	KeyType           string   `json:"key_type"`
	KeyBits           int      `json:"key_bits"`
	UseCSRCommonName  bool     `json:"use_csr_common_name"`
	UseCSRSANs        bool     `json:"use_csr_sans"`
	AllowAnyName      bool     `json:"allow_any_name"`
	AllowedDomains    names    `json:"allowed_domains"`
	AllowBareDomains  bool     `json:"allow_bare_domains"`
	AllowSubdomains   bool     `json:"allow_subdomains"`
	AllowGlobDomains  bool     `json:"allow_glob_domains"`
	AllowLocalhost    bool     `json:"allow_localhost"`
	EnforceHostnames  bool     `json:"enforce_hostnames"`
	CNValidations     names    `json:"cn_validations"`
	TTL               duration `json:"ttl"`
	MaxTTL            duration `json:"max_ttl"`
	NotBeforeDuration duration `json:"not_before_duration"`
	NoStore           bool     `json:"no_store"`
	ClientFlag        bool     `json:"client_flag"`
}

// ReadRole reads the configured role. A 404 means the role does not exist,
// but only a token allowed to read the path gets one: for a token whose
// policy does not allow it, a missing role or mount is a 403 like any other.
func (c *Client) ReadRole(ctx context.Context) (Role, error) {
	var out struct {
		Data *Role `json:"data"`
	}
	err := c.call(ctx, http.MethodGet, c.pkiPath("roles/"+c.cfg.Role), nil, &out)
	switch {
	case rest.StatusOf(err) == http.StatusNotFound && strings.Contains(messageOf(err), "no handler"):
		return Role{}, fmt.Errorf("vault: mount %q does not exist (404 reading role %q): check Mount: %w", c.cfg.Mount, c.cfg.Role, err)
	case rest.StatusOf(err) == http.StatusNotFound:
		return Role{}, fmt.Errorf("vault: role %q does not exist on mount %q (404): check Role and Mount: %w", c.cfg.Role, c.cfg.Mount, err)
	case err != nil:
		return Role{}, err
	case out.Data == nil:
		return Role{}, fmt.Errorf("vault: GET %s: answer carries no data", c.pkiPath("roles/"+c.cfg.Role))
	}
	c.rememberBackdate(*out.Data)
	return *out.Data, nil
}

// backdate is how far the role backdates NotBefore.
func (r Role) backdate() time.Duration {
	if r.NotBeforeDuration > 0 {
		return time.Duration(r.NotBeforeDuration)
	}
	return defaultBackdate
}

func (c *Client) rememberBackdate(r Role) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.backdate = r.backdate()
	return c.backdate
}

// sampleName is a gateway name as gatehouse's name policy makes them: one
// DNS label, no domain.
const sampleName = "gw-01"

var hostLabel = regexp.MustCompile(`^([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$`)

// allowsName is OpenBao's validateNames and validateCommonName for a plain
// host name (cert_util.go): allow_any_name, or an allowed domain taken
// bare, as a parent domain or as a glob; allow_localhost for "localhost".
func (r Role) allowsName(name string) bool {
	if len(r.CNValidations) > 0 && !slices.Contains(r.CNValidations, "hostname") && !slices.Contains(r.CNValidations, "disabled") {
		return false
	}
	if r.EnforceHostnames && !isHostname(name) {
		return false
	}
	if r.AllowAnyName || r.AllowLocalhost && name == "localhost" {
		return true
	}
	for _, d := range r.AllowedDomains {
		switch {
		case d == "":
		case r.AllowBareDomains && strings.EqualFold(name, d),
			r.AllowSubdomains && strings.HasSuffix(name, "."+d),
			r.AllowGlobDomains && strings.Contains(d, "*") && globMatch(d, name):
			return true
		}
	}
	return false
}

func isHostname(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if len(l) > 63 || !hostLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// globMatch is the glob of allowed_domains: '*' matches any run of
// characters, dots included (ryanuber/go-glob).
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

// names reads a list Vault may send as a JSON array or as a
// comma-separated string (older roles).
type names []string

func (n *names) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*n = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*n = nil
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*n = append(*n, part)
		}
	}
	return nil
}

// duration reads a TTL Vault sends as whole seconds, or as a duration
// string.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if n, err := strconv.ParseFloat(string(b), 64); err == nil {
		*d = duration(time.Duration(n * float64(time.Second)))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, ok := parseTTL(s)
	if !ok && s != "" {
		return fmt.Errorf("not a duration: %q", s)
	}
	*d = duration(v)
	return nil
}

func (d duration) String() string { return time.Duration(d).String() }
