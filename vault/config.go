package vault

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults for the optional Config fields.
const (
	DefaultMount             = "pki"
	DefaultAppRoleMount      = "approle"
	DefaultKubernetesMount   = "kubernetes"
	DefaultKubernetesJWTPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Config says which Vault (or OpenBao) PKI to use and how to authenticate.
// Exactly one auth method must be set: Token, AppRoleID with
// AppRoleSecretID, or KubernetesRole.
type Config struct {
	// Addr is the server's base URL, e.g. https://vault.example.com:8200.
	Addr string
	// Mount is the PKI secrets engine's mount path; default "pki".
	Mount string
	// Role is the PKI role certificates are issued under (required). For
	// Sign it should set use_csr_common_name=false and use_csr_sans=false,
	// so the approved name wins over whatever the CSR says.
	Role string
	// Namespace is sent as X-Vault-Namespace (Vault Enterprise, OpenBao).
	Namespace string
	// TTL is the certificates' lifetime, e.g. "8760h"; default the role's.
	// OpenBao caps it at the role's max_ttl (with a warning), or at the
	// mount's max lease TTL (768h unless tuned) when the role has none.
	TTL string
	// Sign is the mode: true signs the agent's CSR (the key stays on the
	// gateway), false has Vault issue a key pair. Check judges the role
	// against it.
	Sign bool

	// Token is a Vault token used as is; it is never renewed.
	Token string
	// AppRoleID and AppRoleSecretID log in at auth/<AppRoleMount>/login.
	AppRoleID, AppRoleSecretID string
	// AppRoleMount is the AppRole auth mount path; default "approle".
	AppRoleMount string
	// KubernetesRole logs in at auth/<KubernetesMount>/login with the pod's
	// service account token, read from KubernetesJWTPath at every login
	// because the kubelet rotates it.
	KubernetesRole    string
	KubernetesJWTPath string // default DefaultKubernetesJWTPath
	KubernetesMount   string // default "kubernetes"

	// Timeout bounds one HTTP attempt; default 30 s.
	Timeout time.Duration
	// Retries is how often a 429, 5xx or network failure is retried;
	// default 4, negative disables retries.
	Retries int
	// HTTP sends the requests; default one on rest.Transport.
	HTTP *http.Client
	// UserAgent names the caller to Vault; default "gatehouse".
	UserAgent string
	// Logger receives a debug line per HTTP attempt (method, path, status);
	// nil logs nothing.
	Logger *slog.Logger
}

// String shows the configuration without its secrets, so a Config that
// ends up in a log line leaks nothing.
func (c Config) String() string {
	return fmt.Sprintf("vault.Config{Addr: %q, Mount: %q, Role: %q, Namespace: %q, mode: %s, auth: %s}",
		c.Addr, c.Mount, c.Role, c.Namespace, c.mode(), c.authMethod())
}

func (c Config) mode() string {
	if c.Sign {
		return "sign"
	}
	return "issue"
}

func (c Config) authMethod() string {
	var m []string
	if c.Token != "" {
		m = append(m, "token")
	}
	if c.AppRoleID != "" || c.AppRoleSecretID != "" {
		m = append(m, "approle")
	}
	if c.KubernetesRole != "" {
		m = append(m, "kubernetes")
	}
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(m, "+")
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("vault: config: "+format, args...))
	}
	if err := checkAddr(c.Addr); err != nil {
		add("%v", err)
	}
	checkMount(add, "Mount", c.Mount)
	checkMount(add, "AppRoleMount", c.AppRoleMount)
	checkMount(add, "KubernetesMount", c.KubernetesMount)
	switch {
	case c.Role == "":
		add("Role is required (the PKI role to issue certificates under)")
	case !rolePattern.MatchString(c.Role):
		add("Role %q is not a valid Vault role name (letters, digits, '_', '-', '.', '@')", c.Role)
	}
	if c.TTL != "" && !validTTL(c.TTL) {
		add("TTL %q is not a duration such as \"8760h\", \"30d\" or a number of seconds", c.TTL)
	}
	if strings.ContainsFunc(c.Namespace, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		add("Namespace %q contains spaces or control characters", c.Namespace)
	}
	if c.Timeout < 0 {
		add("Timeout must not be negative")
	}
	if err := c.checkAuth(); err != nil {
		add("%v", err)
	}
	return errors.Join(errs...)
}

func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("Addr is required (e.g. https://vault.example.com:8200)")
	}
	u, err := url.Parse(addr)
	if err != nil {
		return errors.New("Addr is not a URL such as https://vault.example.com:8200")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Redacted, in case the URL carries a password.
		return fmt.Errorf("Addr %q is not an http(s) URL such as https://vault.example.com:8200", u.Redacted())
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("Addr must not carry credentials, a query or a fragment")
	}
	return nil
}

// mountSegment is one segment of a mount path; mounts may nest ("pki/int").
var mountSegment = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func checkMount(add func(string, ...any), field, mount string) {
	if mount == "" {
		return
	}
	for _, seg := range strings.Split(strings.Trim(mount, "/"), "/") {
		if !mountSegment.MatchString(seg) || seg == "." || seg == ".." {
			add("%s %q is not a valid mount path", field, mount)
			return
		}
	}
}

// rolePattern is Vault's framework.GenericNameRegex.
var rolePattern = regexp.MustCompile(`^\w([\w.@-]*\w)?$`)

// validTTL accepts what Vault's duration parser accepts: a Go duration, a
// number of seconds, or days with a "d" suffix.
func validTTL(s string) bool {
	_, ok := parseTTL(s)
	return ok
}

func parseTTL(s string) (time.Duration, bool) {
	if n, err := strconv.ParseUint(s, 10, 63); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 31)
		return time.Duration(n) * 24 * time.Hour, err == nil
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d > 0
}

// checkAuth insists on exactly one method, because silently preferring one
// of two configured methods hides a deployment mistake.
func (c Config) checkAuth() error {
	switch m := c.authMethod(); {
	case m == "none":
		return errors.New("no auth method: set Token, AppRoleID and AppRoleSecretID, or KubernetesRole")
	case strings.Contains(m, "+"):
		return fmt.Errorf("set exactly one auth method, not %s", strings.ReplaceAll(m, "+", " and "))
	case m == "approle" && (c.AppRoleID == "" || c.AppRoleSecretID == ""):
		return errors.New("AppRole needs both AppRoleID and AppRoleSecretID")
	}
	return nil
}

func (c Config) withDefaults() Config {
	c.Addr = strings.TrimRight(c.Addr, "/")
	c.Mount = mountOr(c.Mount, DefaultMount)
	c.AppRoleMount = mountOr(c.AppRoleMount, DefaultAppRoleMount)
	c.KubernetesMount = mountOr(c.KubernetesMount, DefaultKubernetesMount)
	if c.KubernetesJWTPath == "" {
		c.KubernetesJWTPath = DefaultKubernetesJWTPath
	}
	return c
}

func mountOr(mount, def string) string {
	if m := strings.Trim(mount, "/"); m != "" {
		return m
	}
	return def
}
