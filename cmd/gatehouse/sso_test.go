package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/config"
	"gatehouse/server"
	"gatehouse/sso"
	"gatehouse/sso/ssotest"
)

const ssoRedirect = "http://127.0.0.1:8080" + server.PathSSOCallback

func ssoEnv(issuer string) map[string]string {
	return map[string]string{
		"GATEHOUSE_OIDC_ISSUER":        issuer,
		"GATEHOUSE_OIDC_CLIENT_ID":     ssotest.ClientID,
		"GATEHOUSE_OIDC_CLIENT_SECRET": ssotest.ClientSecret,
		"GATEHOUSE_OIDC_REDIRECT_URL":  ssoRedirect,
		"GATEHOUSE_OIDC_NAME":          "Company SSO",
		"GATEHOUSE_OIDC_ADMIN_GROUPS":  "gatehouse-admins",
	}
}

func TestConfigCheckSSO(t *testing.T) {
	idp := ssotest.Start(t, ssoRedirect)
	env := ssoEnv(idp.Issuer)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"config", "check", "--online", "-o", "json"}, &out, &errOut, func(k string) string { return env[k] })
	var results []config.CheckResult
	json.Unmarshal(out.Bytes(), &results)
	if code != 0 || len(results) != 5 || results[4].Backend != "oidc" || !results[4].Enabled || results[4].Online != "ok" {
		t.Fatalf("exit %d: %+v %s", code, results, errOut.String())
	}

	env["GATEHOUSE_OIDC_ISSUER"] = idp.Issuer + "/wrong"
	out.Reset()
	code = run(context.Background(), []string{"config", "check", "--online"}, &out, &errOut, func(k string) string { return env[k] })
	if code != 1 || !strings.Contains(out.String(), "oidc") || !strings.Contains(out.String(), "404") || strings.Contains(out.String(), ssotest.ClientSecret) {
		t.Fatalf("wrong issuer: exit %d, output:\n%s", code, out.String())
	}

	delete(env, "GATEHOUSE_OIDC_ISSUER")
	errOut.Reset()
	code = run(context.Background(), []string{"config", "check"}, &out, &errOut, func(k string) string { return env[k] })
	if code != 1 || !strings.Contains(errOut.String(), "GATEHOUSE_OIDC_ISSUER") {
		t.Fatalf("settings without the issuer: exit %d, stderr:\n%s", code, errOut.String())
	}
}

func TestServeOffersSSO(t *testing.T) {
	idp := ssotest.Start(t, ssoRedirect)
	cfg, err := loadConfig(func(k string) string { return ssoEnv(idp.Issuer)[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	app, err := appFromConfig(cfg)
	if err != nil || app.OIDC == nil {
		t.Fatalf("app config: %+v, %v", app.OIDC, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app.Listen, app.DB = "127.0.0.1:0", filepath.Join(t.TempDir(), "g.db")
	a, err := startApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.server.URL()+"/api/v1/auth", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var opts struct {
		SSO *struct{ Name, URL string } `json:"sso"`
	}
	json.NewDecoder(resp.Body).Decode(&opts)
	if opts.SSO == nil || opts.SSO.Name != "Company SSO" || opts.SSO.URL != server.PathSSOLogin {
		t.Fatalf("login options: %+v", opts.SSO)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ = http.NewRequestWithContext(ctx, "GET", a.server.URL()+server.PathSSOLogin, nil)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), idp.Issuer+"/authorize?") {
		t.Fatalf("SSO login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestServeStopsWhenDiscoveryFails(t *testing.T) {
	idp := ssotest.Start(t, ssoRedirect)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	oidc := &sso.Config{Issuer: idp.Issuer + "/nowhere", ClientID: ssotest.ClientID, ClientSecret: ssotest.ClientSecret,
		RedirectURL: ssoRedirect, Roles: sso.RoleMap{Admin: []string{"a"}}}
	_, err := startApp(ctx, appConfig{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "g.db"), OIDC: oidc})
	if err == nil || !strings.Contains(err.Error(), "discovery") || strings.Contains(err.Error(), ssotest.ClientSecret) {
		t.Fatalf("start with a wrong issuer: %v", err)
	}
}
