package simulate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VaultServerOptions configure NewVaultServer. At least one way to
// authenticate (RootToken, AppRole or Kubernetes) is required.
type VaultServerOptions struct {
	// Mount is the PKI secrets engine's mount path; default "pki".
	Mount string
	// Role is the one PKI role that exists; default "gatehouse".
	Role string
	// RootToken is accepted as X-Vault-Token as is; it never expires and
	// cannot be renewed, like a real root token.
	RootToken string
	// AppRoleID and AppRoleSecretID are what auth/approle/login accepts.
	AppRoleID, AppRoleSecretID string
	// KubernetesRole and KubernetesJWT are what auth/kubernetes/login accepts.
	KubernetesRole, KubernetesJWT string
	// TokenTTL is the lease of tokens from a login, renewable by renew-self
	// for as long again; default 1h.
	TokenTTL time.Duration
	// TokenMaxTTL caps renewals (Vault's max_ttl): past it the token
	// expires however often it is renewed. 0 means no cap.
	TokenMaxTTL time.Duration
	// Now is the server's clock, so tests can expire tokens without
	// sleeping; default time.Now.
	Now func() time.Time
	// Wrap, if set, goes around the API (inside the HTTP faults), e.g. a
	// contract.Checker's Wrap.
	Wrap func(http.Handler) http.Handler
	// State is the PKI to serve; nil means a new one with a fresh root CA.
	State *PKI
}

// VaultServer serves a PKI secrets engine and the AppRole, Kubernetes and
// token auth endpoints over Vault's real paths, with its status codes and
// bodies. Its role behaves as use_csr_common_name=false (see PKI). Faults
// are injected with the embedded Server.Faults; State's own in-process
// Faults apply only to calls made on State directly.
type VaultServer struct {
	*Server
	State *PKI

	auth *vaultAuth
}

// NewVaultServer starts a simulated Vault on a loopback port. Close it when done.
func NewVaultServer(opts VaultServerOptions) (*VaultServer, error) {
	if opts.RootToken == "" && (opts.AppRoleID == "" || opts.AppRoleSecretID == "") &&
		(opts.KubernetesRole == "" || opts.KubernetesJWT == "") {
		return nil, errors.New("simulate: vault server needs a RootToken, an AppRole id and secret id, or a Kubernetes role and JWT")
	}
	opts = vaultDefaults(opts)
	if opts.State == nil {
		p, err := NewPKI()
		if err != nil {
			return nil, err
		}
		opts.State = p
	}
	auth := newVaultAuth(opts)
	srv, err := serve(vaultRoutes(&vaultAPI{opts: opts, pki: opts.State, auth: auth}), opts.Wrap)
	if err != nil {
		return nil, err
	}
	return &VaultServer{Server: srv, State: opts.State, auth: auth}, nil
}

func vaultDefaults(opts VaultServerOptions) VaultServerOptions {
	opts.Mount = strings.Trim(opts.Mount, "/")
	if opts.Mount == "" {
		opts.Mount = "pki"
	}
	if opts.Role == "" {
		opts.Role = "gatehouse"
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts
}

// Logins counts successful AppRole and Kubernetes logins.
func (s *VaultServer) Logins() int {
	n, _ := s.auth.counts()
	return n
}

// Renewals counts successful renew-self calls.
func (s *VaultServer) Renewals() int {
	_, n := s.auth.counts()
	return n
}

// ExpireTokens makes every token issued by a login so far expire now; the
// root token is unaffected.
func (s *VaultServer) ExpireTokens() { s.auth.expireAll() }

// vaultAPI answers the HTTP requests.
type vaultAPI struct {
	opts VaultServerOptions
	pki  *PKI
	auth *vaultAuth
}

func vaultRoutes(a *vaultAPI) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/auth/approle/login", vaultMethods(a.appRoleLogin, "POST", "PUT"))
	mux.HandleFunc("/v1/auth/kubernetes/login", vaultMethods(a.kubernetesLogin, "POST", "PUT"))
	mux.HandleFunc("/v1/auth/token/lookup-self", a.authed(vaultMethods(a.lookupSelf, "GET", "POST")))
	mux.HandleFunc("/v1/auth/token/renew-self", a.authed(vaultMethods(a.renewSelf, "POST", "PUT")))
	mux.HandleFunc("/v1/", a.authed(vaultMethods(a.secrets, "POST", "PUT")))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeVaultError(w, http.StatusNotFound, "404 page not found")
	})
	return mux
}

// tokenKey carries the caller's token record from authed to the handlers.
type tokenKey struct{}

// authed refuses requests without a live token before routing them, as
// Vault does: an expired token on an unknown path is still a 403.
func (a *vaultAPI) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := tokenOf(r)
		t := a.auth.lookup(tok)
		if t == nil {
			writeVaultError(w, http.StatusForbidden, "permission denied")
			return
		}
		next(w, r.WithContext(withVaultToken(r.Context(), tok, t)))
	}
}

// vaultMethods answers 405 for operations a path does not support.
func vaultMethods(h http.HandlerFunc, methods ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m {
				h(w, r)
				return
			}
		}
		writeVaultError(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
}

// secrets routes /v1/<mount>/{issue,sign}/<role> and /v1/<mount>/revoke.
func (a *vaultAPI) secrets(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	rest, ok := strings.CutPrefix(path, a.opts.Mount+"/")
	if !ok {
		writeVaultError(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", path))
		return
	}
	op, role, _ := strings.Cut(rest, "/")
	switch {
	case op == "revoke" && role == "":
		a.revoke(w, r)
	case (op == "issue" || op == "sign") && role != "" && !strings.Contains(role, "/"):
		a.certificate(w, r, op, role)
	default:
		writeVaultError(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", path))
	}
}

// vaultCertRequest is the body of issue and sign.
type vaultCertRequest struct {
	CommonName       string `json:"common_name"`
	CSR              string `json:"csr"`
	TTL              any    `json:"ttl"` // Vault takes "8760h", "30d" or seconds
	Format           string `json:"format"`
	PrivateKeyFormat string `json:"private_key_format"`
}

func (a *vaultAPI) certificate(w http.ResponseWriter, r *http.Request, op, role string) {
	var req vaultCertRequest
	if !decodeVault(w, r, &req) {
		return
	}
	if role != a.opts.Role {
		// Vault routes any role name and refuses unknown ones with a 400.
		writeVaultError(w, http.StatusBadRequest, "unknown role: "+vaultShorten(role, 80))
		return
	}
	c, err := a.makeCertificate(op, req)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	writeVaultData(w, certificateData(c))
}

func (a *vaultAPI) makeCertificate(op string, req vaultCertRequest) (vaultCert, error) {
	ttl, err := parseVaultTTL(req.TTL)
	if err != nil {
		return vaultCert{}, err
	}
	if err := checkVaultFormat(req.Format); err != nil {
		return vaultCert{}, err
	}
	if op == "sign" {
		return a.pki.sign(req.CommonName, req.CSR, ttl)
	}
	pkcs8, err := vaultKeyFormat(req.PrivateKeyFormat)
	if err != nil {
		return vaultCert{}, err
	}
	return a.pki.issue(req.CommonName, ttl, pkcs8)
}

// certificateData is Vault's answer to issue and sign. Vault's PEM strings
// carry no trailing newline.
func certificateData(c vaultCert) map[string]any {
	ca := strings.TrimSpace(c.CAChainPEM)
	d := map[string]any{
		"certificate":   strings.TrimSpace(c.CertificatePEM),
		"issuing_ca":    ca,
		"ca_chain":      []string{ca},
		"serial_number": c.Serial,
		"expiration":    c.expires.Unix(),
	}
	if c.PrivateKeyPEM != "" {
		d["private_key"] = strings.TrimSpace(c.PrivateKeyPEM)
		d["private_key_type"] = c.keyType
	}
	return d
}

func checkVaultFormat(f string) error {
	switch f {
	case "", "pem":
		return nil
	case "der", "pem_bundle":
		return vaultBadRequest("format %q is valid but not simulated; use pem", f)
	}
	return vaultBadRequest(`the "format" path parameter must be "pem", "der", or "pem_bundle"`)
}

// vaultKeyFormat reports whether the key comes as PKCS#8; Vault's default
// "der" (and "pem") give the key's native form, SEC1 for EC keys.
func vaultKeyFormat(f string) (pkcs8 bool, err error) {
	switch f {
	case "", "der", "pem":
		return false, nil
	case "pkcs8":
		return true, nil
	}
	return false, vaultBadRequest(`the "private_key_format" field must be "der", "pem", or "pkcs8"`)
}

// parseVaultTTL reads a ttl as Vault does: a Go duration, a number of
// seconds, or a number of days with a "d" suffix.
func parseVaultTTL(v any) (time.Duration, error) {
	var d time.Duration
	var err error
	switch t := v.(type) {
	case nil:
		return 0, nil
	case float64:
		d = time.Duration(t * float64(time.Second))
	case string:
		d, err = parseVaultDuration(t)
	default:
		err = errors.New("not a string or number")
	}
	if err != nil || d < 0 {
		return 0, vaultBadRequest("error parsing ttl: invalid duration %v", v)
	}
	return d, nil
}

func parseVaultDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// vaultRevokeRequest names the certificate to revoke, one way or the other.
type vaultRevokeRequest struct {
	SerialNumber string `json:"serial_number"`
	Certificate  string `json:"certificate"`
}

func (a *vaultAPI) revoke(w http.ResponseWriter, r *http.Request) {
	var req vaultRevokeRequest
	if !decodeVault(w, r, &req) {
		return
	}
	serial, err := revokeSerial(req)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	at, err := a.pki.revoke(serial)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	writeVaultData(w, map[string]any{
		"revocation_time":         at.Unix(),
		"revocation_time_rfc3339": at.UTC().Format(time.RFC3339Nano),
		"state":                   "revoked",
	})
}

func revokeSerial(req vaultRevokeRequest) (string, error) {
	switch {
	case req.SerialNumber != "" && req.Certificate != "":
		return "", vaultBadRequest("Must provide either the certificate or the serial to revoke; not both.")
	case req.SerialNumber != "":
		return req.SerialNumber, nil
	case req.Certificate == "":
		return "", vaultBadRequest("The serial number or certificate to revoke must be provided.")
	}
	cert, err := parseVaultCertificate(req.Certificate)
	if err != nil {
		return "", err
	}
	return FormatSerial(cert.SerialNumber), nil
}

// decodeVault reads an optional JSON object body, answering 400 as Vault
// does when it is malformed. Unknown fields are ignored, as Vault ignores
// them (with a warning).
func decodeVault(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeVaultError(w, http.StatusBadRequest, "failed to parse JSON input: "+err.Error())
		return false
	}
	return true
}

// writeVaultData writes Vault's response envelope around data.
func writeVaultData(w http.ResponseWriter, data map[string]any) {
	writeVaultJSON(w, http.StatusOK, vaultEnvelope(data, nil, nil))
}

func vaultEnvelope(data map[string]any, auth map[string]any, warnings []string) map[string]any {
	return map[string]any{
		"request_id":     randomVaultUUID(),
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           data,
		"wrap_info":      nil,
		"warnings":       warnings,
		"auth":           auth,
	}
}

func randomVaultUUID() string {
	h := randomVaultID(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeVaultJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeVaultErr answers with the status a vaultError carries; anything else
// is an internal error whose detail stays in the server.
func writeVaultErr(w http.ResponseWriter, err error) {
	var ve *vaultError
	if errors.As(err, &ve) {
		writeVaultError(w, ve.status, ve.msg)
		return
	}
	writeVaultError(w, http.StatusInternalServerError, "internal error")
}

func writeVaultError(w http.ResponseWriter, status int, msgs ...string) {
	writeVaultJSON(w, status, map[string][]string{"errors": msgs})
}
