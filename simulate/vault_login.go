package simulate

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// tokenKey carries the caller's token record from ServeHTTP to the handlers.
type tokenKey struct{}

type vaultCaller struct {
	token string
	rec   *vaultToken
}

func withVaultToken(ctx context.Context, tok string, t *vaultToken) context.Context {
	return context.WithValue(ctx, tokenKey{}, vaultCaller{tok, t})
}

func vaultCallerOf(r *http.Request) vaultCaller {
	c, _ := r.Context().Value(tokenKey{}).(vaultCaller)
	return c
}

// appRoleLogin answers like auth/approle/login behind OpenBao's user
// lockout (builtin/credential/approle/path_login.go pathLoginUpdate, and
// vault/request_handling.go handleLoginRequest). A wrong role id and a wrong
// secret id get the same answer so neither can be probed alone, but only a
// wrong secret id for a real role id is ErrInvalidCredentials, which the
// lockout counts; a locked role id gets a bare 403 before its secret id is
// even looked at.
func (a *vaultAPI) appRoleLogin(w http.ResponseWriter, r *http.Request, _ []string) {
	if a.opts.AppRoleID == "" {
		writeVaultError(w, http.StatusForbidden, "permission denied") // auth method not mounted
		return
	}
	var req struct {
		RoleID   string `json:"role_id"`
		SecretID string `json:"secret_id"`
	}
	if !decodeVault(w, r, &req) {
		return
	}
	roleID, secretID := strings.TrimSpace(req.RoleID), strings.TrimSpace(req.SecretID)
	switch {
	case roleID == "":
		writeVaultError(w, http.StatusBadRequest, "missing role_id")
	case a.lockout.locked(roleID):
		writeVaultError(w, http.StatusForbidden, "permission denied")
	case !vaultEqual(roleID, a.opts.AppRoleID):
		writeVaultError(w, http.StatusBadRequest, "invalid role or secret ID")
	case secretID == "":
		writeVaultError(w, http.StatusBadRequest, "missing secret_id")
	case !vaultEqual(secretID, a.opts.AppRoleSecretID):
		a.lockout.fail(roleID)
		writeVaultError(w, http.StatusBadRequest, "invalid role or secret ID")
	default:
		a.lockout.succeed(roleID)
		a.writeLogin(w, "auth/approle/login")
	}
}

// kubernetesLogin answers like auth/kubernetes/login, where a JWT the token
// review rejects is a 403.
func (a *vaultAPI) kubernetesLogin(w http.ResponseWriter, r *http.Request, _ []string) {
	if a.opts.KubernetesRole == "" {
		writeVaultError(w, http.StatusForbidden, "permission denied")
		return
	}
	var req struct {
		Role string `json:"role"`
		JWT  string `json:"jwt"`
	}
	if !decodeVault(w, r, &req) {
		return
	}
	switch {
	case req.Role == "":
		writeVaultError(w, http.StatusBadRequest, "missing role")
	case req.JWT == "":
		writeVaultError(w, http.StatusBadRequest, "missing jwt")
	case req.Role != a.opts.KubernetesRole:
		writeVaultError(w, http.StatusBadRequest, fmt.Sprintf("invalid role name %q", vaultShorten(req.Role, 80)))
	case !vaultEqual(req.JWT, a.opts.KubernetesJWT):
		writeVaultError(w, http.StatusForbidden, "permission denied")
	default:
		a.writeLogin(w, "auth/kubernetes/login")
	}
}

func (a *vaultAPI) writeLogin(w http.ResponseWriter, path string) {
	tok, t := a.auth.login(path)
	writeVaultJSON(w, http.StatusOK, vaultEnvelope(nil, a.authBlock(tok, t), nil))
}

// authBlock is the "auth" object of a login or renewal.
func (a *vaultAPI) authBlock(tok string, t *vaultToken) map[string]any {
	return map[string]any{
		"client_token":   tok,
		"accessor":       t.accessor,
		"policies":       t.policies,
		"token_policies": t.policies,
		"metadata":       map[string]string{},
		"lease_duration": a.auth.ttl(t),
		"renewable":      t.renewable,
		"entity_id":      "",
		"token_type":     "service",
		"orphan":         true,
	}
}

// renewSelf extends the caller's token. Vault adds a warning, not an error,
// when the max TTL caps the extension.
func (a *vaultAPI) renewSelf(w http.ResponseWriter, r *http.Request, _ []string) {
	var req struct {
		Increment any `json:"increment"`
	}
	if !decodeVault(w, r, &req) {
		return
	}
	c := vaultCallerOf(r)
	if !c.rec.renewable {
		writeVaultError(w, http.StatusBadRequest, "lease is not renewable")
		return
	}
	var warnings []string
	if a.auth.renew(c.rec) {
		warnings = []string{fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly",
			a.opts.TokenTTL, a.opts.TokenMaxTTL)}
	}
	writeVaultJSON(w, http.StatusOK, vaultEnvelope(nil, a.authBlock(c.token, c.rec), warnings))
}

// lookupSelf answers with the caller's token, including its id, as Vault does.
func (a *vaultAPI) lookupSelf(w http.ResponseWriter, r *http.Request, _ []string) {
	c := vaultCallerOf(r)
	ttl, creationTTL := a.auth.ttl(c.rec), int64(a.opts.TokenTTL/time.Second)
	if !c.rec.renewable { // the root token: no TTL at all
		creationTTL = 0
	}
	var expire any
	if ttl > 0 {
		expire = a.opts.Now().Add(time.Duration(ttl) * time.Second).UTC().Format(time.RFC3339)
	}
	writeVaultData(w, map[string]any{
		"accessor":      c.rec.accessor,
		"creation_time": c.rec.created.Unix(),
		"creation_ttl":  creationTTL,
		"display_name":  c.rec.path,
		"entity_id":     "",
		"expire_time":   expire,
		"id":            c.token,
		"meta":          nil,
		"num_uses":      0,
		"orphan":        true,
		"path":          c.rec.path,
		"policies":      c.rec.policies,
		"renewable":     c.rec.renewable,
		"ttl":           ttl,
		"type":          "service",
	})
}

func parseVaultCertificate(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, vaultBadRequest("certificate contains no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, vaultBadRequest("unable to parse certificate: %v", err)
	}
	return cert, nil
}
