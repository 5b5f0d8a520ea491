package vault

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"gatehouse/contract"
)

// vaultChecker checks requests against Vault's own OpenAPI document. Its
// paths are relative to /v1 ("All API routes are prefixed with /v1/"), and
// contract.NewChecker pins servers to "/", so the paths get the prefix here.
func vaultChecker(t *testing.T) *contract.Checker {
	t.Helper()
	docs, err := contract.LoadOpenAPI3(t.Context(), "vault/vault-openapi-subset.json")
	if errors.Is(err, contract.ErrNoSpecs) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	doc := docs[0]
	prefixed := openapi3.NewPaths()
	for path, item := range doc.Paths.Map() {
		path = pinMount(path, item, "approle_mount_path", DefaultAppRoleMount)
		path = pinMount(path, item, "kubernetes_mount_path", DefaultKubernetesMount)
		prefixed.Set("/v1"+path, item)
	}
	doc.Paths = prefixed
	dropMistypedDefaults(doc)
	c, err := contract.NewChecker(doc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestContract runs every client call, for every auth method, including
// renewals and logins after expiry, through the spec.
func TestContract(t *testing.T) {
	checker := vaultChecker(t)
	var unchecked atomic.Int32
	for name, auth := range authConfigs(t) {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			opts := simOptions(clk)
			opts.Wrap = specWrap(checker, &unchecked)
			s := newSim(t, opts)
			auth.TTL = "720h"
			c := newClient(t, s.URL, auth, clk)
			exerciseClient(t, c, s.ExpireTokens, clk)
		})
	}
	n, problems := checker.Result()
	if len(problems) > 0 {
		t.Fatal(checker.Summary())
	}
	if n < 20 {
		t.Errorf("only %d requests checked", n)
	}
	t.Logf("%d requests checked against the Vault spec, %d outside the subset", n, unchecked.Load())
}

// inSubset matches the paths the OpenAPI subset covers (specs/README.md:
// issue, sign, revoke, the AppRole and Kubernetes logins, lookup-self and
// renew-self). Reading the role and listing certificates are not in it,
// so those requests pass unchecked.
var inSubset = regexp.MustCompile(`^/v1/(pki/(issue|sign)/[^/]+|pki/revoke|auth/[^/]+/login|auth/token/(lookup|renew)-self)$`)

func specWrap(c *contract.Checker, unchecked *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		checked := c.Wrap(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if inSubset.MatchString(r.URL.Path) {
				checked.ServeHTTP(w, r)
				return
			}
			unchecked.Add(1)
			next.ServeHTTP(w, r)
		})
	}
}

func exerciseClient(t *testing.T, c *Client, expire func(), clk *clock) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.Issue(ctx, "gw-contract")
	if err != nil {
		t.Fatal(err)
	}
	_, csr := newCSR(t)
	if _, err := c.Sign(ctx, "gw-contract", csr); err != nil {
		t.Fatal(err)
	}
	clk.Advance(45 * time.Minute) // renew-self
	if err := c.Revoke(ctx, got.Serial); err != nil {
		t.Fatal(err)
	}
	expire() // 403, then a fresh login
	if _, err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Issued(ctx, "gw-contract", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// pinMount fills in an auth mount parameter with its default. The AppRole
// and Kubernetes logins are both /auth/{mount}/login, which a router cannot
// tell apart; at their default mounts (the ones the simulator serves) each
// request meets its own operation and body schema.
func pinMount(path string, item *openapi3.PathItem, param, mount string) string {
	placeholder := "{" + param + "}"
	if !strings.Contains(path, placeholder) {
		return path
	}
	item.Parameters = slices.DeleteFunc(item.Parameters, func(p *openapi3.ParameterRef) bool {
		return p.Value != nil && p.Value.Name == param
	})
	return strings.ReplaceAll(path, placeholder, mount)
}

// dropMistypedDefaults removes defaults that contradict their schema's type,
// such as TokenRenewSelfRequest.increment (a string whose default is the
// number 0): Vault's generator emits them and kin-openapi refuses the
// document. Only defaults go; types and required fields are checked as
// published.
func dropMistypedDefaults(doc *openapi3.T) {
	for _, ref := range doc.Components.Schemas {
		for _, prop := range ref.Value.Properties {
			p := prop.Value
			if _, isString := p.Default.(string); p.Type.Is("string") && p.Default != nil && !isString {
				p.Default = nil
			}
		}
	}
}

// The checker must catch malformed requests, or a pass above means nothing.
func TestContractRejectsMalformed(t *testing.T) {
	checker := vaultChecker(t)
	for path, body := range map[string]string{
		"/v1/pki/issue/gatehouse": `{"common_name":"gw","format":"pem-ish"}`,
		"/v1/pki/sign/gatehouse":  `{"common_name":"gw","csr":42}`,
		"/v1/auth/approle/login":  `{"role_id":["r"]}`,
		"/v1/pki/unknown":         `{}`,
	} {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if err := checker.Check(r); err == nil {
			t.Errorf("POST %s %s accepted", path, body)
		}
	}
}
