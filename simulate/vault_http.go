package simulate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VaultServerOptions configure NewVaultServer. At least one way to
// authenticate (RootToken, Tokens, AppRole or Kubernetes) is required.
type VaultServerOptions struct {
	// Mount is the PKI secrets engine's mount path; default "pki".
	Mount string
	// Role is the name of the one PKI role that exists; default "gatehouse".
	Role string
	// RoleConfig sets the role's settings; nil keeps State's, which for a
	// new PKI are OpenBao's defaults for a new role (DefaultVaultRole).
	RoleConfig *VaultRole
	// RootToken is accepted as X-Vault-Token as is; it never expires and
	// cannot be renewed, like a real root token, and may do anything.
	RootToken string
	// Tokens are more static tokens, each limited to its policy (plus the
	// lookup-self and renew-self of Vault's default policy).
	Tokens map[string]VaultPolicy
	// AppRoleID and AppRoleSecretID are what auth/approle/login accepts.
	AppRoleID, AppRoleSecretID string
	// KubernetesRole and KubernetesJWT are what auth/kubernetes/login accepts.
	KubernetesRole, KubernetesJWT string
	// TokenPolicy limits the tokens from AppRole and Kubernetes logins;
	// nil means GatehouseVaultPolicy(Mount, Role).
	TokenPolicy VaultPolicy
	// TokenTTL is the lease of tokens from a login, renewable by renew-self
	// for as long again; default 1h.
	TokenTTL time.Duration
	// TokenMaxTTL caps renewals (Vault's max_ttl): past it the token
	// expires however often it is renewed. 0 means no cap.
	TokenMaxTTL time.Duration
	// LockoutThreshold, LockoutDuration and LockoutCounterReset shape the
	// AppRole lockout; 0 means OpenBao's defaults (5, 15m, 15m).
	// DisableLockout turns it off.
	LockoutThreshold                     int
	LockoutDuration, LockoutCounterReset time.Duration
	DisableLockout                       bool
	// HashiCorp makes the server answer like HashiCorp Vault where it
	// differs from OpenBao for gatehouse: there is no LIST certs/detailed,
	// and LIST certs ignores after and limit.
	HashiCorp bool
	// Now is the server's clock for tokens and lockouts, so tests can
	// expire them without sleeping; default time.Now.
	Now func() time.Time
	// Wrap, if set, goes around the API (inside the HTTP faults), e.g. a
	// contract.Checker's Wrap.
	Wrap func(http.Handler) http.Handler
	// State is the PKI to serve; nil means a new one with a fresh root CA.
	State *PKI
}

// VaultServer serves a PKI secrets engine with one role, AppRole,
// Kubernetes and token auth, and sys/locked-users over OpenBao's real
// paths, with its status codes, bodies and ACL behaviour. Faults are
// injected with the embedded Server.Faults; State's own in-process Faults
// apply only to calls made on State directly.
type VaultServer struct {
	*Server
	State *PKI

	auth    *vaultAuth
	lockout *vaultLockout
}

// NewVaultServer starts a simulated Vault on a loopback port. Close it when done.
func NewVaultServer(opts VaultServerOptions) (*VaultServer, error) {
	if opts.RootToken == "" && len(opts.Tokens) == 0 && (opts.AppRoleID == "" || opts.AppRoleSecretID == "") &&
		(opts.KubernetesRole == "" || opts.KubernetesJWT == "") {
		return nil, errors.New("simulate: vault server needs a RootToken, Tokens, an AppRole id and secret id, or a Kubernetes role and JWT")
	}
	opts, err := vaultDefaults(opts)
	if err != nil {
		return nil, err
	}
	api := &vaultAPI{opts: opts, pki: opts.State, auth: newVaultAuth(opts), lockout: newVaultLockout(opts)}
	srv, err := serve(api, opts.Wrap)
	if err != nil {
		return nil, err
	}
	return &VaultServer{Server: srv, State: opts.State, auth: api.auth, lockout: api.lockout}, nil
}

func vaultDefaults(opts VaultServerOptions) (VaultServerOptions, error) {
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
	if opts.TokenPolicy == nil {
		opts.TokenPolicy = GatehouseVaultPolicy(opts.Mount, opts.Role)
	}
	if opts.State == nil {
		p, err := NewPKI()
		if err != nil {
			return opts, err
		}
		opts.State = p
	}
	if opts.RoleConfig != nil {
		if err := opts.State.SetRole(*opts.RoleConfig); err != nil {
			return opts, err
		}
	}
	return opts, nil
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

// AppRoleAccessor is the AppRole mount's accessor, the first part of
// sys/locked-users/<accessor>/unlock/<role_id>.
func (s *VaultServer) AppRoleAccessor() string { return s.lockout.accessor }

// LockedOut lists the AppRole role ids locked out right now.
func (s *VaultServer) LockedOut() []string { return s.lockout.lockedAliases() }

// vaultAPI answers the HTTP requests.
type vaultAPI struct {
	opts    VaultServerOptions
	pki     *PKI
	auth    *vaultAuth
	lockout *vaultLockout
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
func writeVaultData(w http.ResponseWriter, data map[string]any, warnings ...string) {
	writeVaultJSON(w, http.StatusOK, vaultEnvelope(data, nil, warnings))
}

func vaultEnvelope(data map[string]any, auth map[string]any, warnings []string) map[string]any {
	if len(warnings) == 0 {
		warnings = nil
	}
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

// writeVaultError writes {"errors": msgs}; with no messages that is
// {"errors":[]}, Vault's 404 for a read or list that found nothing.
func writeVaultError(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeVaultJSON(w, status, map[string][]string{"errors": msgs})
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
