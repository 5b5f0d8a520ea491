package sso

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gatehouse"
)

func goodConfig() Config {
	return Config{Issuer: "https://login.example.com/realms/ops", ClientID: "gatehouse", ClientSecret: "s3cret-value-for-tests",
		RedirectURL: "https://gatehouse.example.com/auth/sso/callback", Roles: RoleMap{Admin: []string{"ops-admins"}}}
}

func TestRoleOfGroups(t *testing.T) {
	m := RoleMap{Admin: []string{"admins"}, Operator: []string{"ops", "/site/ops"}, Viewer: []string{"staff"}}
	for _, tc := range []struct {
		groups []string
		want   gatehouse.Role
	}{
		{nil, ""},
		{[]string{"visitors"}, ""},
		{[]string{"staff"}, gatehouse.RoleViewer},
		{[]string{"staff", "ops"}, gatehouse.RoleOperator},
		{[]string{"/site/ops"}, gatehouse.RoleOperator},
		{[]string{"ops", "admins", "staff"}, gatehouse.RoleAdmin},
		{[]string{"staff", "admins"}, gatehouse.RoleAdmin},
		{[]string{"Admins", "OPS"}, ""}, // exact match, case included
		{[]string{"site/ops"}, ""},
	} {
		if got := m.Role(tc.groups); got != tc.want {
			t.Errorf("Role(%q) = %q, want %q", tc.groups, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := goodConfig().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	local := goodConfig()
	local.Issuer, local.RedirectURL = "http://127.0.0.1:5556/dex", "http://localhost:8080/auth/sso/callback"
	if err := local.Validate(); err != nil {
		t.Fatalf("plain http on loopback: %v", err)
	}
	proxied := goodConfig()
	proxied.RedirectURL = "https://example.com/gatehouse/auth/sso/callback"
	if err := proxied.Validate(); err != nil {
		t.Fatalf("behind a path prefix: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"no issuer":          {func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		"http issuer":        {func(c *Config) { c.Issuer = "http://login.example.com" }, "plain http only on loopback"},
		"issuer query":       {func(c *Config) { c.Issuer += "?x=1" }, "query or fragment"},
		"issuer credentials": {func(c *Config) { c.Issuer = "https://u:p@login.example.com" }, "credentials"},
		"no client":          {func(c *Config) { c.ClientID = "" }, "ClientID is required"},
		"spaced client":      {func(c *Config) { c.ClientID = "gate house" }, "spaces"},
		"no secret":          {func(c *Config) { c.ClientSecret = "" }, "ClientSecret is required"},
		"no redirect":        {func(c *Config) { c.RedirectURL = "" }, "RedirectURL is required"},
		"wrong path":         {func(c *Config) { c.RedirectURL = "https://gatehouse.example.com/callback" }, "/auth/sso/callback"},
		"http redirect":      {func(c *Config) { c.RedirectURL = "http://gatehouse.example.com/auth/sso/callback" }, "plain http"},
		"long name":          {func(c *Config) { c.Name = strings.Repeat("x", 65) }, "Name"},
		"bad claim":          {func(c *Config) { c.GroupsClaim = "my groups" }, "GroupsClaim"},
		"bad scope":          {func(c *Config) { c.Scopes = []string{"groups", `x"y`} }, `has "x\"y"`},
		"no groups":          {func(c *Config) { c.Roles = RoleMap{} }, "give no group a role"},
		"group twice":        {func(c *Config) { c.Roles.Viewer = []string{"ops-admins"} }, `Roles.Viewer lists "ops-admins", which is listed for admin too`},
		"empty group":        {func(c *Config) { c.Roles.Operator = []string{""} }, "Roles.Operator has an empty group"},
	} {
		c := goodConfig()
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), c.ClientSecret) && c.ClientSecret != "" {
			t.Errorf("%s: the error shows the secret", name)
		}
	}
}

func TestValidateReportsEverything(t *testing.T) {
	err := (Config{Issuer: "ftp://x", Roles: RoleMap{}}).Validate()
	for _, want := range []string{"Issuer", "ClientID", "ClientSecret", "RedirectURL", "give no group"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in: %v", want, err)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	c := goodConfig()
	c.RedirectURL = ""
	var fe *FieldError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Field != "RedirectURL" {
		t.Fatalf("%v", err)
	}
}

func TestScopes(t *testing.T) {
	c := goodConfig()
	c.Scopes = []string{"groups", "openid", "offline_access"}
	if got := strings.Join(c.scopes(), " "); got != "openid profile email groups offline_access" {
		t.Fatalf("scopes %q", got)
	}
}

func TestConfigHidesTheSecret(t *testing.T) {
	c := goodConfig()
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("start", "oidc", c)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "oidc", c)
	fmt.Fprintf(&buf, "%v %+v %#v %s", c, c, c, c)
	if strings.Contains(buf.String(), c.ClientSecret) {
		t.Fatalf("the secret is shown: %s", buf.String())
	}
	if !strings.Contains(buf.String(), c.Issuer) {
		t.Fatalf("the issuer is not shown: %s", buf.String())
	}
}
