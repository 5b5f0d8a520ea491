package config

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/server"
	"gatehouse/sso/ssotest"
)

const oidcSecret = "oidc-client-secret-for-tests"

func oidcEnv() map[string]string {
	return map[string]string{
		"GATEHOUSE_OIDC_ISSUER":          "https://login.example.com/realms/ops",
		"GATEHOUSE_OIDC_CLIENT_ID":       "gatehouse",
		"GATEHOUSE_OIDC_CLIENT_SECRET":   oidcSecret,
		"GATEHOUSE_OIDC_REDIRECT_URL":    "https://gatehouse.example.com/auth/sso/callback",
		"GATEHOUSE_OIDC_ADMIN_GROUPS":    "gatehouse-admins",
		"GATEHOUSE_OIDC_OPERATOR_GROUPS": " Site Ops , /eu/ops,",
		"GATEHOUSE_OIDC_VIEWER_GROUPS":   "",
		"GATEHOUSE_OIDC_SCOPES":          "groups, offline_access",
	}
}

func TestOIDCSettings(t *testing.T) {
	env := oidcEnv()
	env["GATEHOUSE_OIDC_NAME"] = "Company SSO"
	env["GATEHOUSE_OIDC_GROUPS_CLAIM"] = "roles"
	c, err := load(env)
	if err != nil || c.OIDC == nil {
		t.Fatalf("oidc: %+v, %v", c, err)
	}
	o := c.OIDC
	if o.Issuer != env["GATEHOUSE_OIDC_ISSUER"] || o.ClientID != "gatehouse" || o.ClientSecret != oidcSecret ||
		o.RedirectURL != env["GATEHOUSE_OIDC_REDIRECT_URL"] || o.Name != "Company SSO" || o.GroupsClaim != "roles" {
		t.Errorf("settings: %+v", o)
	}
	if !slices.Equal(o.Roles.Admin, []string{"gatehouse-admins"}) || !slices.Equal(o.Roles.Operator, []string{"Site Ops", "/eu/ops"}) || o.Roles.Viewer != nil {
		t.Errorf("groups: %+v", o.Roles)
	}
	if !slices.Equal(o.Scopes, []string{"groups", "offline_access"}) {
		t.Errorf("scopes: %q", o.Scopes)
	}
}

func TestOIDCOffByDefault(t *testing.T) {
	c, err := load(map[string]string{})
	if err != nil || c.OIDC != nil {
		t.Fatalf("no settings: %+v, %v", c.OIDC, err)
	}
}

func TestOIDCSecretFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(oidcSecret+"\n"), 0o600)
	env := oidcEnv()
	delete(env, "GATEHOUSE_OIDC_CLIENT_SECRET")
	env["GATEHOUSE_OIDC_CLIENT_SECRET_FILE"] = file
	c, err := load(env)
	if err != nil || c.OIDC.ClientSecret != oidcSecret {
		t.Fatalf("secret file: %v", err)
	}
	env["GATEHOUSE_OIDC_CLIENT_SECRET"] = oidcSecret
	if _, err := load(env); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("secret and file: %v", err)
	}
}

func TestOIDCWithoutIssuer(t *testing.T) {
	for _, key := range []string{"GATEHOUSE_OIDC_CLIENT_ID", "GATEHOUSE_OIDC_CLIENT_SECRET_FILE", "GATEHOUSE_OIDC_ADMIN_GROUPS", "GATEHOUSE_OIDC_SCOPES"} {
		_, err := load(map[string]string{key: "x"})
		if err == nil || !strings.Contains(err.Error(), "GATEHOUSE_OIDC_ISSUER") {
			t.Errorf("%s without the issuer: %v", key, err)
		}
	}
}

func TestOIDCProblemsReportedTogether(t *testing.T) {
	env := oidcEnv()
	env["GATEHOUSE_OIDC_REDIRECT_URL"] = "https://gatehouse.example.com/"
	env["GATEHOUSE_OIDC_ADMIN_GROUPS"] = ""
	env["GATEHOUSE_OIDC_OPERATOR_GROUPS"] = ""
	delete(env, "GATEHOUSE_OIDC_CLIENT_ID")
	env["GATEHOUSE_FOLLOW_DEADLINE"] = "soon"
	_, err := load(env)
	for _, want := range []string{"GATEHOUSE_OIDC_REDIRECT_URL must be", "/auth/sso/callback", "GATEHOUSE_OIDC_CLIENT_ID is required", "GATEHOUSE_OIDC_VIEWER_GROUPS give no group a role", "GATEHOUSE_FOLLOW_DEADLINE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in: %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), oidcSecret) {
		t.Errorf("the error shows the secret: %v", err)
	}
}

func TestCheckSSO(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, _ := load(map[string]string{})
	if r := off.CheckSSO(ctx, true); r.Enabled || r.Backend != "oidc" {
		t.Fatalf("off: %+v", r)
	}

	redirect := "http://127.0.0.1:8080" + server.PathSSOCallback
	idp := ssotest.Start(t, redirect)
	env := oidcEnv()
	env["GATEHOUSE_OIDC_ISSUER"], env["GATEHOUSE_OIDC_REDIRECT_URL"] = idp.Issuer, redirect
	c, err := load(env)
	if err != nil {
		t.Fatal(err)
	}
	r := c.CheckSSO(ctx, false)
	if !r.Enabled || r.Online != "" || len(r.Notes) != 2 || !strings.Contains(r.Notes[1], `"Site Ops"`) {
		t.Fatalf("offline: %+v", r)
	}
	if r = c.CheckSSO(ctx, true); r.Online != "ok" {
		t.Fatalf("online: %+v", r)
	}

	idp2 := ssotest.Start(t, redirect)
	c.OIDC.Issuer = idp2.Issuer + "/nowhere"
	if r = c.CheckSSO(ctx, true); !strings.Contains(r.Online, "404") || strings.Contains(r.Online, oidcSecret) {
		t.Fatalf("wrong issuer: %+v", r)
	}
}
