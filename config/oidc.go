package config

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"gatehouse/sso"
)

// OpenID Connect single sign-on for operators: not a backend, so not in
// the registry, but read, validated and checked the same way.

// oidcKeys are the settings besides the issuer, which turns it on.
var oidcKeys = []string{"GATEHOUSE_OIDC_CLIENT_ID", "GATEHOUSE_OIDC_CLIENT_SECRET", "GATEHOUSE_OIDC_REDIRECT_URL",
	"GATEHOUSE_OIDC_NAME", "GATEHOUSE_OIDC_GROUPS_CLAIM", "GATEHOUSE_OIDC_ADMIN_GROUPS", "GATEHOUSE_OIDC_OPERATOR_GROUPS",
	"GATEHOUSE_OIDC_VIEWER_GROUPS", "GATEHOUSE_OIDC_SCOPES"}

func (c *Config) loadOIDC(e *Env) error {
	issuer := e.Get("GATEHOUSE_OIDC_ISSUER")
	if issuer == "" {
		return requireFor(e, "GATEHOUSE_OIDC_ISSUER", oidcKeys...)
	}
	secret, err := e.Secret("GATEHOUSE_OIDC_CLIENT_SECRET")
	if err != nil {
		return err
	}
	o := &sso.Config{
		Issuer: issuer, ClientID: e.Get("GATEHOUSE_OIDC_CLIENT_ID"), ClientSecret: secret,
		RedirectURL: e.Get("GATEHOUSE_OIDC_REDIRECT_URL"), Name: e.Get("GATEHOUSE_OIDC_NAME"),
		GroupsClaim: e.Get("GATEHOUSE_OIDC_GROUPS_CLAIM"),
		Roles: sso.RoleMap{Admin: list(e.Get("GATEHOUSE_OIDC_ADMIN_GROUPS")), Operator: list(e.Get("GATEHOUSE_OIDC_OPERATOR_GROUPS")),
			Viewer: list(e.Get("GATEHOUSE_OIDC_VIEWER_GROUPS"))},
		Scopes: strings.FieldsFunc(e.Get("GATEHOUSE_OIDC_SCOPES"), func(r rune) bool { return r == ',' || r == ' ' }),
	}
	if err := o.Validate(); err != nil {
		return oidcProblems(err)
	}
	c.OIDC = o
	return nil
}

// oidcSetting names the setting behind each field of sso.Config.
var oidcSetting = map[string]string{
	"Issuer": "GATEHOUSE_OIDC_ISSUER", "ClientID": "GATEHOUSE_OIDC_CLIENT_ID", "ClientSecret": "GATEHOUSE_OIDC_CLIENT_SECRET",
	"RedirectURL": "GATEHOUSE_OIDC_REDIRECT_URL", "Name": "GATEHOUSE_OIDC_NAME", "GroupsClaim": "GATEHOUSE_OIDC_GROUPS_CLAIM",
	"Scopes": "GATEHOUSE_OIDC_SCOPES", "Roles.Admin": "GATEHOUSE_OIDC_ADMIN_GROUPS", "Roles.Operator": "GATEHOUSE_OIDC_OPERATOR_GROUPS",
	"Roles.Viewer": "GATEHOUSE_OIDC_VIEWER_GROUPS",
	"Roles":        "GATEHOUSE_OIDC_ADMIN_GROUPS, GATEHOUSE_OIDC_OPERATOR_GROUPS and GATEHOUSE_OIDC_VIEWER_GROUPS",
}

// oidcProblems words each problem with the setting to fix, one a line.
func oidcProblems(err error) error {
	all := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		all = joined.Unwrap()
	}
	var errs []error
	for _, e := range all {
		var fe *sso.FieldError
		if errors.As(e, &fe) && oidcSetting[fe.Field] != "" {
			errs = append(errs, fmt.Errorf("config: %s %s", oidcSetting[fe.Field], fe.Problem))
		} else {
			errs = append(errs, fmt.Errorf("config: %w", e))
		}
	}
	return errors.Join(errs...)
}

// list splits a comma-separated setting, trimming each entry and dropping
// empty ones. Commas only: group names may hold spaces.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// CheckSSO is single sign-on's line in `gatehouse config check`; online,
// it reads the provider's discovery document as `gatehouse serve` does.
func (c *Config) CheckSSO(ctx context.Context, online bool) CheckResult {
	r := CheckResult{Backend: "oidc", Enabled: c.OIDC != nil}
	if c.OIDC == nil {
		return r
	}
	r.Notes = roleNotes(c.OIDC.Roles)
	if !online {
		return r
	}
	// Discovery needs no key; any will do for a check that never signs in.
	key := make([]byte, 32)
	rand.Read(key)
	s, err := sso.New(ctx, *c.OIDC, sso.Options{Key: key})
	if err != nil {
		r.Online = err.Error()
		return r
	}
	r.Online = "ok"
	r.Notes = append(r.Notes, s.Notes()...)
	return r
}

// roleNotes say which groups give which role, to check at a glance.
func roleNotes(m sso.RoleMap) []string {
	var out []string
	for _, g := range []struct {
		role   string
		groups []string
	}{{"admin", m.Admin}, {"operator", m.Operator}, {"viewer", m.Viewer}} {
		if len(g.groups) > 0 {
			out = append(out, fmt.Sprintf("%s: groups %q", g.role, g.groups))
		}
	}
	return out
}
