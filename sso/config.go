// Package sso signs operators in with an OpenID Connect provider: the
// Authorization Code flow with PKCE, state and nonce, the ID token checked
// with go-oidc, and the person's groups mapped to a gatehouse role.
package sso

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"gatehouse"
	"gatehouse/server"
)

// Defaults for the optional settings.
const (
	DefaultName        = "Single sign-on"
	DefaultGroupsClaim = "groups"
	DefaultTimeout     = 10 * time.Second
)

// baseScopes are always asked for: openid makes it OpenID Connect, profile
// and email give a name to show.
var baseScopes = []string{"openid", "profile", "email"}

// Config is one OpenID Connect client registration and how its groups map
// to roles.
type Config struct {
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer/.well-known/openid-configuration.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the public address of gatehouse's callback,
	// https://HOST/auth/sso/callback, registered at the provider as is.
	RedirectURL string
	// Name labels the login button; default DefaultName.
	Name string
	// GroupsClaim names the ID token claim listing the person's groups;
	// default DefaultGroupsClaim.
	GroupsClaim string
	// Roles says which groups give which role.
	Roles RoleMap
	// Scopes are asked for besides openid, profile and email, e.g.
	// "groups" for providers that send the claim only when asked.
	Scopes []string
	// Timeout bounds discovery and each call to the provider; default
	// DefaultTimeout.
	Timeout time.Duration
}

// withDefaults fills in the optional settings.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = DefaultGroupsClaim
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// scopes is every scope asked for, each once.
func (c Config) scopes() []string {
	out := slices.Clone(baseScopes)
	for _, s := range c.Scopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// FieldError is one invalid setting: Field names it as in Config
// ("Roles.Admin" for the admin groups), and Problem follows the name in a
// sentence.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return "oidc: config: " + e.Field + " " + e.Problem }

// Validate reports every problem at once, each a *FieldError. Messages
// never show the secret.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if err := checkURL(c.Issuer, "https://login.example.com/realms/ops"); err != nil {
		add("Issuer", "%v", err)
	} else if u, _ := url.Parse(c.Issuer); u.RawQuery != "" || u.Fragment != "" {
		add("Issuer", "must not have a query or fragment, got %q", c.Issuer)
	}
	switch {
	case c.ClientID == "":
		add("ClientID", "is required (the client id the provider gave gatehouse)")
	case strings.ContainsFunc(c.ClientID, isSpaceOrControl):
		add("ClientID", "%q contains spaces or control characters", c.ClientID)
	}
	if c.ClientSecret == "" {
		add("ClientSecret", "is required: gatehouse is a confidential client")
	}
	if err := checkRedirect(c.RedirectURL); err != nil {
		add("RedirectURL", "%v", err)
	}
	if len(c.Name) > 64 || strings.ContainsFunc(c.Name, unicode.IsControl) {
		add("Name", "must be at most 64 characters without control characters")
	}
	if strings.ContainsFunc(c.GroupsClaim, isSpaceOrControl) {
		add("GroupsClaim", "%q contains spaces or control characters", c.GroupsClaim)
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsFunc(s, isSpaceOrControl) || strings.ContainsAny(s, `"\`) {
			add("Scopes", "has %q, which is not a valid OAuth scope", s)
		}
	}
	if c.Timeout < 0 {
		add("Timeout", "must not be negative")
	}
	c.Roles.check(add)
	return errors.Join(errs...)
}

// checkURL wants an absolute https URL without credentials; plain http
// only on loopback, for trials on one machine.
func checkURL(raw, example string) error {
	if raw == "" {
		return fmt.Errorf("is required (e.g. %s)", example)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("does not parse as a URL")
	case u.User != nil:
		return errors.New("must not carry credentials")
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("must be an https:// URL with a host (e.g. %s), got %q", example, raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("must be https:// (plain http only on loopback), got %q", raw)
	}
	return nil
}

func checkRedirect(raw string) error {
	example := "https://gatehouse.example.com" + server.PathSSOCallback
	if err := checkURL(raw, example); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	if u.RawQuery != "" || u.Fragment != "" || !strings.HasSuffix(u.Path, server.PathSSOCallback) {
		return fmt.Errorf("must be gatehouse's public address followed by %s (e.g. %s), got %q", server.PathSSOCallback, example, raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// String leaves the secret out, so printing a Config cannot leak it.
func (c Config) String() string {
	return fmt.Sprintf("oidc issuer=%s client_id=%s redirect_url=%s client_secret=%s", c.Issuer, c.ClientID, c.RedirectURL, secretMark(c.ClientSecret))
}

// GoString leaves the secret out of %#v too.
func (c Config) GoString() string { return c.String() }

// LogValue leaves the secret out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", c.Issuer), slog.String("client_id", c.ClientID),
		slog.String("redirect_url", c.RedirectURL), slog.String("client_secret", secretMark(c.ClientSecret)))
}

func secretMark(s string) string {
	if s == "" {
		return "[unset]"
	}
	return "[set]"
}

// RoleMap lists the provider's groups that give each role. Group names
// are matched exactly, case included, as the provider sends them.
type RoleMap struct {
	Admin, Operator, Viewer []string
}

// Role is the highest role any of groups gives, or "" when none does.
func (m RoleMap) Role(groups []string) gatehouse.Role {
	for _, rg := range m.ranked() {
		if slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(rg.groups, g) }) {
			return rg.role
		}
	}
	return ""
}

type roleGroups struct {
	role   gatehouse.Role
	groups []string
}

// ranked is the roles from the most powerful down.
func (m RoleMap) ranked() []roleGroups {
	return []roleGroups{{gatehouse.RoleAdmin, m.Admin}, {gatehouse.RoleOperator, m.Operator}, {gatehouse.RoleViewer, m.Viewer}}
}

// check refuses a mapping that gives nobody a role, and a group listed
// for two roles, which is a mistake whichever role was meant.
func (m RoleMap) check(add func(field, format string, args ...any)) {
	seen := map[string]gatehouse.Role{}
	total := 0
	for _, rg := range m.ranked() {
		field := "Roles." + strings.ToUpper(string(rg.role[:1])) + string(rg.role[1:])
		for _, g := range rg.groups {
			total++
			if g == "" || strings.ContainsFunc(g, unicode.IsControl) {
				add(field, "has an empty group name or one with control characters: %q", g)
			} else if other, ok := seen[g]; ok && other != rg.role {
				add(field, "lists %q, which is listed for %s too", g, other)
			}
			seen[g] = rg.role
		}
	}
	if total == 0 {
		add("Roles", "give no group a role, so nobody could sign in: list admin, operator or viewer groups")
	}
}
