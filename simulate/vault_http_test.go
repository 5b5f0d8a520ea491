package simulate_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/simulate"
)

const vaultRoot = "root-token-for-tests"

// newVaultServer starts a server whose role is the recommended one unless
// opts say otherwise (see newDefaultVaultServer for OpenBao's defaults).
func newVaultServer(t *testing.T, opts simulate.VaultServerOptions) (*simulate.VaultServer, *clock) {
	t.Helper()
	if opts.RoleConfig == nil && opts.State == nil {
		r := simulate.RecommendedVaultRole()
		opts.RoleConfig = &r
	}
	return startVaultServer(t, opts)
}

func startVaultServer(t *testing.T, opts simulate.VaultServerOptions) (*simulate.VaultServer, *clock) {
	t.Helper()
	clk := &clock{now: time.Now()}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	if opts.RootToken == "" {
		opts.RootToken = vaultRoot
	}
	s, err := simulate.NewVaultServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, clk
}

// vaultReply is a decoded Vault answer.
type vaultReply struct {
	status int
	header http.Header
	Data   map[string]any `json:"data"`
	Auth   map[string]any `json:"auth"`
	Errors []string       `json:"errors"`
	Warn   []string       `json:"warnings"`
}

func vaultCall(t *testing.T, s *simulate.VaultServer, method, path, token string, body any) vaultReply {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, s.URL+path, rd)
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := vaultReply{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == http.StatusNoContent {
		return r
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return r
}

func (r vaultReply) want(t *testing.T, status int, errText string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (errors %q), want %d", r.status, r.Errors, status)
	}
	if errText != "" && (len(r.Errors) == 0 || !strings.Contains(strings.Join(r.Errors, "; "), errText)) {
		t.Errorf("errors %q, want one mentioning %q", r.Errors, errText)
	}
}

func (r vaultReply) str(key string) string {
	s, _ := r.Data[key].(string)
	return s
}

func vaultCSR(t *testing.T, cn string) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func TestVaultServerNeedsCredentials(t *testing.T) {
	if _, err := simulate.NewVaultServer(simulate.VaultServerOptions{AppRoleID: "only-an-id"}); err == nil {
		t.Fatal("server without usable credentials started")
	}
}

func TestVaultIssueHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{})
	r := vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot,
		map[string]any{"common_name": "gw-01", "ttl": "24h", "private_key_format": "pkcs8", "format": "pem"})
	r.want(t, 200, "")
	cert := parseCert(t, r.str("certificate")+"\n")
	if cert.Subject.CommonName != "gw-01" || strings.HasSuffix(r.str("certificate"), "\n") {
		t.Errorf("CN %q; Vault's PEM strings end without a newline", cert.Subject.CommonName)
	}
	if d := time.Until(cert.NotAfter); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("valid for %v, want the 24h ttl", d)
	}
	chain, _ := r.Data["ca_chain"].([]any)
	if len(chain) != 1 || chain[0] != r.str("issuing_ca") || r.str("issuing_ca")+"\n" != s.State.CACertPEM() {
		t.Errorf("ca_chain %v / issuing_ca are not the root", chain)
	}
	if !strings.HasPrefix(r.str("private_key"), "-----BEGIN PRIVATE KEY-----") || r.str("private_key_type") != "ec" {
		t.Errorf("private_key_type %q, key %.30q: want a PKCS#8 EC key", r.str("private_key_type"), r.str("private_key"))
	}
	if r.str("serial_number") != simulate.FormatSerial(cert.SerialNumber) {
		t.Errorf("serial_number %q", r.str("serial_number"))
	}
	if exp, _ := r.Data["expiration"].(float64); int64(exp) != cert.NotAfter.Unix() {
		t.Errorf("expiration %v, certificate ends %v", exp, cert.NotAfter.Unix())
	}
	// Vault's default private_key_format gives the key's native DER form.
	r = vaultCall(t, s, "PUT", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-01"})
	r.want(t, 200, "")
	if !strings.HasPrefix(r.str("private_key"), "-----BEGIN EC PRIVATE KEY-----") {
		t.Errorf("default key format: %.30q, want SEC1", r.str("private_key"))
	}
}

func TestVaultSignHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{})
	key, csr := vaultCSR(t, "whatever-the-device-says")
	r := vaultCall(t, s, "POST", "/v1/pki/sign/gatehouse", vaultRoot, map[string]any{"common_name": "gw-02", "csr": csr})
	r.want(t, 200, "")
	cert := parseCert(t, r.str("certificate")+"\n")
	if cert.Subject.CommonName != "gw-02" {
		t.Errorf("CN %q: the requested name must win over the CSR's", cert.Subject.CommonName)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Error("certificate is not for the CSR's key")
	}
	if _, has := r.Data["private_key"]; has {
		t.Error("sign answered with a private key")
	}

	tampered := []byte(csr)
	block, _ := pem.Decode(tampered)
	block.Bytes[len(block.Bytes)-5] ^= 0xff // inside the signature
	for name, tt := range map[string]struct {
		body map[string]any
		err  string
	}{
		"no csr":        {map[string]any{"common_name": "gw-02"}, `"csr" is empty`},
		"no PEM":        {map[string]any{"common_name": "gw-02", "csr": "garbage"}, "csr contains no data"},
		"garbage csr":   {map[string]any{"common_name": "gw-02", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}, "could not be parsed"},
		"bad signature": {map[string]any{"common_name": "gw-02", "csr": string(pem.EncodeToMemory(block))}, "signature"},
		"no name":       {map[string]any{"csr": csr}, "common_name field is required"},
	} {
		t.Run(name, func(t *testing.T) {
			vaultCall(t, s, "POST", "/v1/pki/sign/gatehouse", vaultRoot, tt.body).want(t, 400, tt.err)
		})
	}
	if n := s.State.Len(); n != 1 {
		t.Errorf("%d certificates, want only the good one", n)
	}
}

func TestVaultRequestErrors(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{Mount: "pki_int", Role: "edge"})
	cn := map[string]any{"common_name": "gw-03"}
	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		err                       string
	}{
		{"no token", "POST", "/v1/pki_int/issue/edge", "", cn, 403, "permission denied"},
		{"bad token", "POST", "/v1/pki_int/issue/edge", "nope", cn, 403, "permission denied"},
		{"bad token, unknown path", "POST", "/v1/other/issue/edge", "nope", cn, 403, "permission denied"},
		{"unknown mount", "POST", "/v1/pki/issue/edge", vaultRoot, cn, 404, "no handler for route"},
		{"unknown endpoint", "POST", "/v1/pki_int/frobnicate", vaultRoot, cn, 404, "unsupported path"},
		{"unknown role", "POST", "/v1/pki_int/issue/other", vaultRoot, cn, 400, "unknown role: other"},
		{"bad JSON", "POST", "/v1/pki_int/issue/edge", vaultRoot, "{", 400, "failed to parse JSON"},
		{"no common name", "POST", "/v1/pki_int/issue/edge", vaultRoot, map[string]any{}, 400, "common_name"},
		{"bad name", "POST", "/v1/pki_int/issue/edge", vaultRoot, map[string]any{"common_name": "-gw"}, 400, "common name -gw not allowed by this role"},
		{"name with a space", "POST", "/v1/pki_int/issue/edge", vaultRoot, map[string]any{"common_name": "gw 03"}, 400, "idna: disallowed rune U+0020"},
		{"bad ttl", "POST", "/v1/pki_int/issue/edge", vaultRoot, map[string]any{"common_name": "gw-03", "ttl": "soon"}, 400, "ttl"},
		{"bad format", "POST", "/v1/pki_int/issue/edge", vaultRoot, map[string]any{"common_name": "gw-03", "format": "xml"}, 400, "format"},
		{"GET issue", "GET", "/v1/pki_int/issue/edge", vaultRoot, nil, 405, "unsupported operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vaultCall(t, s, tt.method, tt.path, tt.token, tt.body).want(t, tt.status, tt.err)
		})
	}
	if s.State.Len() != 0 {
		t.Errorf("%d certificates issued by refused requests", s.State.Len())
	}
	vaultCall(t, s, "POST", "/v1/pki_int/issue/edge", vaultRoot, cn).want(t, 200, "")
}

func TestVaultRevokeHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{})
	a := vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-04"})
	b := vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-05"})

	first := vaultCall(t, s, "POST", "/v1/pki/revoke", vaultRoot, map[string]any{"serial_number": a.str("serial_number")})
	first.want(t, 200, "")
	if first.str("state") != "revoked" || first.Data["revocation_time"] == nil || first.str("revocation_time_rfc3339") == "" {
		t.Errorf("revoke data %v", first.Data)
	}
	// Vault takes hyphens and upper case, and a second revocation reports the first.
	again := vaultCall(t, s, "POST", "/v1/pki/revoke", vaultRoot,
		map[string]any{"serial_number": strings.ToUpper(strings.ReplaceAll(a.str("serial_number"), ":", "-"))})
	again.want(t, 200, "")
	if again.str("revocation_time_rfc3339") != first.str("revocation_time_rfc3339") {
		t.Errorf("second revocation at %v, first at %v", again.Data["revocation_time_rfc3339"], first.Data["revocation_time_rfc3339"])
	}
	vaultCall(t, s, "POST", "/v1/pki/revoke", vaultRoot, map[string]any{"certificate": b.str("certificate")}).want(t, 200, "")

	if got := s.State.Revoked(); len(got) != 2 || got[0] != a.str("serial_number") || got[1] != b.str("serial_number") {
		t.Errorf("Revoked() = %v", got)
	}
	vaultCall(t, s, "POST", "/v1/pki/revoke", vaultRoot, map[string]any{"serial_number": "de:ad"}).want(t, 400, "certificate with serial de:ad not found")
	vaultCall(t, s, "POST", "/v1/pki/revoke", vaultRoot, map[string]any{}).want(t, 400, "must be provided")
	vaultCall(t, s, "POST", "/v1/pki/revoke", vaultRoot,
		map[string]any{"serial_number": "de:ad", "certificate": b.str("certificate")}).want(t, 400, "not both")
}

func TestVaultLoginsHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{
		AppRoleID: "role-1", AppRoleSecretID: "secret-1",
		KubernetesRole: "gatehouse", KubernetesJWT: "header.payload.sig",
		TokenTTL: 30 * time.Minute,
	})
	for name, tt := range map[string]struct {
		path string
		body map[string]any
	}{
		"approle":    {"/v1/auth/approle/login", map[string]any{"role_id": "role-1", "secret_id": "secret-1"}},
		"kubernetes": {"/v1/auth/kubernetes/login", map[string]any{"role": "gatehouse", "jwt": "header.payload.sig"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := vaultCall(t, s, "POST", tt.path, "", tt.body)
			r.want(t, 200, "")
			tok, _ := r.Auth["client_token"].(string)
			if tok == "" || r.Auth["accessor"] == "" || r.Auth["renewable"] != true || r.Auth["lease_duration"] != float64(1800) {
				t.Fatalf("auth %v", r.Auth)
			}
			if policies, _ := r.Auth["policies"].([]any); len(policies) == 0 {
				t.Errorf("no policies in %v", r.Auth)
			}
			self := vaultCall(t, s, "GET", "/v1/auth/token/lookup-self", tok, nil)
			self.want(t, 200, "")
			if self.str("id") != tok || self.Data["ttl"] != float64(1800) || self.str("path") != strings.TrimPrefix(tt.path, "/v1/") {
				t.Errorf("lookup-self %v", self.Data)
			}
		})
	}
	for name, tt := range map[string]struct {
		path   string
		body   map[string]any
		status int
		err    string
	}{
		"wrong secret id":  {"/v1/auth/approle/login", map[string]any{"role_id": "role-1", "secret_id": "x"}, 400, "invalid role or secret ID"},
		"wrong role id":    {"/v1/auth/approle/login", map[string]any{"role_id": "x", "secret_id": "secret-1"}, 400, "invalid role or secret ID"},
		"no role id":       {"/v1/auth/approle/login", map[string]any{"secret_id": "secret-1"}, 400, "missing role_id"},
		"wrong jwt":        {"/v1/auth/kubernetes/login", map[string]any{"role": "gatehouse", "jwt": "x.y.z"}, 403, "permission denied"},
		"wrong k8s role":   {"/v1/auth/kubernetes/login", map[string]any{"role": "other", "jwt": "header.payload.sig"}, 400, "invalid role name"},
		"no jwt":           {"/v1/auth/kubernetes/login", map[string]any{"role": "gatehouse"}, 400, "missing jwt"},
		"unmounted method": {"/v1/auth/userpass/login/bob", map[string]any{"password": "x"}, 403, "permission denied"},
	} {
		t.Run(name, func(t *testing.T) {
			vaultCall(t, s, "POST", tt.path, "", tt.body).want(t, tt.status, tt.err)
		})
	}
	if n := s.Logins(); n != 2 {
		t.Errorf("Logins() = %d, want 2", n)
	}
}

func TestVaultTokenLifecycle(t *testing.T) {
	s, clk := newVaultServer(t, simulate.VaultServerOptions{
		AppRoleID: "role-1", AppRoleSecretID: "secret-1", TokenTTL: time.Hour, TokenMaxTTL: 100 * time.Minute,
	})
	login := func() string {
		r := vaultCall(t, s, "POST", "/v1/auth/approle/login", "", map[string]any{"role_id": "role-1", "secret_id": "secret-1"})
		r.want(t, 200, "")
		return r.Auth["client_token"].(string)
	}
	lookup := func(tok string) vaultReply { return vaultCall(t, s, "GET", "/v1/auth/token/lookup-self", tok, nil) }
	renew := func(tok string) vaultReply { return vaultCall(t, s, "POST", "/v1/auth/token/renew-self", tok, "{}") }

	tok := login()
	clk.Add(50 * time.Minute)
	r := renew(tok)
	r.want(t, 200, "")
	if r.Auth["lease_duration"] != float64(3000) || len(r.Warn) == 0 {
		t.Errorf("renewal at 50m: lease %v, warnings %q; want 50m left (max TTL) and a warning", r.Auth["lease_duration"], r.Warn)
	}
	clk.Add(49 * time.Minute)
	lookup(tok).want(t, 200, "")
	clk.Add(time.Minute) // 100m: past the max TTL
	lookup(tok).want(t, 403, "permission denied")
	renew(tok).want(t, 403, "permission denied")

	tok = login()
	s.ExpireTokens()
	lookup(tok).want(t, 403, "permission denied")
	renew(vaultRoot).want(t, 400, "not renewable")

	// The root token never expires, and Vault also takes it as a bearer token.
	req, _ := http.NewRequest("GET", s.URL+"/v1/auth/token/lookup-self", nil)
	req.Header.Set("Authorization", "Bearer "+vaultRoot)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("root bearer token after ExpireTokens: %d", resp.StatusCode)
	}
	if l, n := s.Logins(), s.Renewals(); l != 2 || n != 1 {
		t.Errorf("Logins %d, Renewals %d; want 2 and 1", l, n)
	}
}

func TestVaultHTTPFaultsAndWrap(t *testing.T) {
	var wrapped atomic.Int32
	s, _ := newVaultServer(t, simulate.VaultServerOptions{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wrapped.Add(1)
			h.ServeHTTP(w, r)
		})
	}})
	s.Faults.FailNext(1, http.StatusTooManyRequests, 2*time.Second)
	cn := map[string]any{"common_name": "gw-06"}
	r := vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, cn)
	if r.status != 429 || r.header.Get("Retry-After") != "2" {
		t.Errorf("status %d, Retry-After %q; want 429 and 2", r.status, r.header.Get("Retry-After"))
	}
	vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, cn).want(t, 200, "")
	if s.State.Len() != 1 || wrapped.Load() != 1 {
		t.Errorf("%d certificates, %d wrapped requests; the fault must stop the first before the API", s.State.Len(), wrapped.Load())
	}
}

// A server can share a PKI with in-process users, e.g. a demo's assertions.
func TestVaultServerSharesState(t *testing.T) {
	p := newPKI(t)
	s, _ := newVaultServer(t, simulate.VaultServerOptions{State: p})
	vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": "gw-07"}).want(t, 200, "")
	if s.State != p || p.Len() != 1 {
		t.Errorf("server does not serve the given PKI")
	}
}
