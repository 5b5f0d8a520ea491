package simulate_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/simulate"
)

const limitedToken = "limited-token-for-tests"

// A server without a role config has OpenBao's new-role defaults, so a
// misconfigured role shows as it would on a real OpenBao: issue refuses
// the bare name, sign refuses the agent's ECDSA CSR.
func TestVaultDefaultRoleHTTP(t *testing.T) {
	s, _ := startVaultServer(t, simulate.VaultServerOptions{})
	vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01"}).
		want(t, 400, "common name gw-01 not allowed by this role")
	_, csr := vaultCSR(t, "gatehouse-pending")
	vaultCall(t, s, "POST", "/v1/pki/sign/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01", "csr": csr}).
		want(t, 400, "role requires keys of type rsa")

	// path_roles.go pathRoleRead / roleEntry.ToResponseData, durations in seconds.
	r := vaultCall(t, s, "GET", "/v1/pki/roles/gatehouse", vaultRoot, nil)
	r.want(t, 200, "")
	for k, want := range map[string]any{
		"key_type": "rsa", "key_bits": 2048.0, "use_csr_common_name": true, "use_csr_sans": true,
		"allow_any_name": false, "enforce_hostnames": true, "allow_localhost": true, "require_cn": true,
		"not_before_duration": 30.0, "ttl": 0.0, "max_ttl": 0.0, "no_store": false,
	} {
		if r.Data[k] != want {
			t.Errorf("role %s = %v, want %v", k, r.Data[k], want)
		}
	}
	if d, _ := r.Data["allowed_domains"].([]any); d == nil || len(d) != 0 {
		t.Errorf("allowed_domains %v, want []", r.Data["allowed_domains"])
	}
}

// Reading the role: the root token sees 404 for an unknown role and "no
// handler" for an unknown mount; a token whose policy lacks read on the
// path gets 403 whether or not mount and role exist (external-apis.md §0).
func TestVaultReadRoleHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{
		AppRoleID: "role-1", AppRoleSecretID: "secret-1",
		Tokens: map[string]simulate.VaultPolicy{limitedToken: {"pki/issue/gatehouse": {"create", "update"}}},
	})
	login := vaultCall(t, s, "POST", "/v1/auth/approle/login", "", map[string]any{"role_id": "role-1", "secret_id": "secret-1"})
	login.want(t, 200, "")
	approle := login.Auth["client_token"].(string)
	for _, tt := range []struct {
		name, path, token string
		status            int
		err               string
	}{
		{"root", "/v1/pki/roles/gatehouse", vaultRoot, 200, ""},
		{"root, unknown role", "/v1/pki/roles/other", vaultRoot, 404, ""},
		{"root, unknown mount", "/v1/pki_x/roles/gatehouse", vaultRoot, 404, "no handler for route"},
		{"gatehouse policy", "/v1/pki/roles/gatehouse", approle, 200, ""},
		{"gatehouse policy, other role", "/v1/pki/roles/other", approle, 403, "permission denied"},
		{"gatehouse policy, other mount", "/v1/pki_x/roles/gatehouse", approle, 403, "permission denied"},
		{"limited", "/v1/pki/roles/gatehouse", limitedToken, 403, "permission denied"},
		{"limited, unknown mount", "/v1/pki_x/roles/gatehouse", limitedToken, 403, "permission denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := vaultCall(t, s, "GET", tt.path, tt.token, nil)
			r.want(t, tt.status, tt.err)
			if tt.status == 404 && tt.err == "" && len(r.Errors) != 0 {
				t.Errorf("errors %q, want none (pathRoleRead returns nothing)", r.Errors)
			}
			if tt.status == 200 && r.str("key_type") != "ec" {
				t.Errorf("key_type %q", r.str("key_type"))
			}
		})
	}
	// The limited token can still do what its policy names.
	vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", limitedToken, map[string]any{"common_name": "gw-01"}).want(t, 200, "")
	vaultCall(t, s, "POST", "/v1/pki/issue/other", limitedToken, map[string]any{"common_name": "gw-01"}).want(t, 403, "permission denied")
	vaultCall(t, s, "POST", "/v1/pki/issue/other", vaultRoot, map[string]any{"common_name": "gw-01"}).want(t, 400, "unknown role: other")
}

// Policy paths take Vault's "+" (one segment) and trailing "*" (prefix).
func TestVaultPolicyPatterns(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{Tokens: map[string]simulate.VaultPolicy{
		limitedToken: {"+/issue/gatehouse": {"update"}, "pki/ro*": {"read"}, "pki/roles/gatehouse": {"deny"}},
	}})
	vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", limitedToken, map[string]any{"common_name": "gw-01"}).want(t, 200, "")
	vaultCall(t, s, "POST", "/v1/pki/sign/gatehouse", limitedToken, map[string]any{"common_name": "gw-01"}).want(t, 403, "")
	vaultCall(t, s, "GET", "/v1/pki/roles/other", limitedToken, nil).want(t, 404, "")
	vaultCall(t, s, "GET", "/v1/pki/roles/gatehouse", limitedToken, nil).want(t, 403, "permission denied")
	vaultCall(t, s, "GET", "/v1/auth/token/lookup-self", limitedToken, nil).want(t, 200, "") // Vault's default policy
}

// pathIssue (path_issue_sign.go): key_type=any issues only with a key_type
// in the request; a role with a fixed type ignores the request's, warning.
func TestVaultIssueKeyTypeHTTP(t *testing.T) {
	anyKey := simulate.RecommendedVaultRole()
	anyKey.KeyType = "any"
	s, _ := newVaultServer(t, simulate.VaultServerOptions{RoleConfig: &anyKey})
	vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01"}).
		want(t, 400, `role key type "any" not allowed for issuing certificates without providing key_type and/or key_bits request parameters`)
	r := vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01", "key_type": "ed25519"})
	r.want(t, 200, "")
	if r.str("private_key_type") != "ed25519" {
		t.Errorf("private_key_type %q, want the requested ed25519", r.str("private_key_type"))
	}

	s, _ = newVaultServer(t, simulate.VaultServerOptions{})
	r = vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01", "key_type": "rsa", "key_bits": 2048})
	r.want(t, 200, "")
	if r.str("private_key_type") != "ec" || !slices.Contains(r.Warn, "parameters key_type and key_bits ignored as role had specific values") {
		t.Errorf("private_key_type %q, warnings %q: want the role's ec and a warning", r.str("private_key_type"), r.Warn)
	}
}

// A ttl above max_ttl is capped, and the answer says so in warnings
// (cert_util.go getCertificateNotAfter).
func TestVaultTTLCappedHTTP(t *testing.T) {
	role := simulate.RecommendedVaultRole()
	role.MaxTTL = 720 * time.Hour
	s, _ := newVaultServer(t, simulate.VaultServerOptions{RoleConfig: &role})
	r := vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01", "ttl": "8760h"})
	r.want(t, 200, "")
	want := `TTL "8760h0m0s" is longer than permitted maxTTL "720h0m0s", so maxTTL is being used`
	if !slices.Equal(r.Warn, []string{want}) {
		t.Errorf("warnings %q, want %q", r.Warn, want)
	}
	cert := parseCert(t, r.str("certificate")+"\n")
	if d := time.Until(cert.NotAfter); d > 720*time.Hour || d < 719*time.Hour {
		t.Errorf("valid for %v, want 720h", d)
	}
	if nb, _ := r.Data["not_before"].(float64); int64(nb) != cert.NotBefore.Unix() {
		t.Errorf("not_before %v, certificate starts %v", nb, cert.NotBefore.Unix())
	}
}

// sign with use_csr_common_name=true answers with the CSR's name and a
// warning that the common_name sent was ignored.
func TestVaultSignUsesCSRNameHTTP(t *testing.T) {
	role := simulate.RecommendedVaultRole()
	role.UseCSRCommonName = true
	s, _ := newVaultServer(t, simulate.VaultServerOptions{RoleConfig: &role})
	_, csr := vaultCSR(t, "gatehouse-pending")
	r := vaultCall(t, s, "POST", "/v1/pki/sign/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01", "csr": csr})
	r.want(t, 200, "")
	if cn := parseCert(t, r.str("certificate")+"\n").Subject.CommonName; cn != "gatehouse-pending" {
		t.Errorf("CN %q, want the CSR's", cn)
	}
	if len(r.Warn) != 1 || !strings.Contains(r.Warn[0], `"use_csr_common_name" set to true`) {
		t.Errorf("warnings %q", r.Warn)
	}
}

func TestVaultServerRefusesBadRole(t *testing.T) {
	role := simulate.RecommendedVaultRole()
	role.TTL = 2 * role.MaxTTL
	if _, err := simulate.NewVaultServer(simulate.VaultServerOptions{RootToken: "x", RoleConfig: &role}); err == nil {
		t.Error("server started with ttl > max_ttl")
	}
	s, err := simulate.NewVaultServer(simulate.VaultServerOptions{Tokens: map[string]simulate.VaultPolicy{"t": nil}})
	if err != nil {
		t.Fatalf("a static token alone is enough to authenticate: %v", err)
	}
	s.Close()
}
