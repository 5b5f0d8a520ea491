package vault

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/simulate"
)

const rootToken = "root-token-s3cret"

// clock is a settable time shared by a client and a simulated server, so
// token leases can run out without the test sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSim(t *testing.T, opts simulate.VaultServerOptions) *simulate.VaultServer {
	t.Helper()
	s, err := simulate.NewVaultServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// simOptions accepts every auth method, with credentials the tests know,
// and has the role gatehouse recommends (a new OpenBao role would refuse
// gateway names; see check_test.go for that).
func simOptions(clk *clock) simulate.VaultServerOptions {
	role := simulate.RecommendedVaultRole()
	return simulate.VaultServerOptions{
		RootToken: rootToken,
		AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret",
		KubernetesRole: "gatehouse", KubernetesJWT: "jwt.s3cret.sig",
		RoleConfig: &role,
		Now:        clk.Now,
	}
}

// authConfigs are the three ways to log in to simOptions' server.
func authConfigs(t *testing.T) map[string]Config {
	return map[string]Config{
		"token":      {Token: rootToken},
		"approle":    {AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"},
		"kubernetes": {KubernetesRole: "gatehouse", KubernetesJWTPath: writeJWT(t, "jwt.s3cret.sig")},
	}
}

func writeJWT(t *testing.T, jwt string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(jwt+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newClient points auth at addr with the gatehouse role (unless auth names
// another) and a fake clock.
func newClient(t *testing.T, addr string, auth Config, clk *clock) *Client {
	t.Helper()
	auth.Addr = addr
	if auth.Role == "" {
		auth.Role = "gatehouse"
	}
	if auth.Timeout == 0 {
		auth.Timeout = 5 * time.Second
	}
	c, err := New(auth)
	if err != nil {
		t.Fatal(err)
	}
	if clk != nil {
		c.now = clk.Now
	}
	return c
}

func parseCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("want exactly one CERTIFICATE PEM block, got %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verifyCert(t *testing.T, certPEM, caPEM, name string) *x509.Certificate {
	t.Helper()
	cert := parseCert(t, certPEM)
	roots := x509.NewCertPool()
	roots.AddCert(parseCert(t, caPEM))
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatalf("certificate does not verify against the CA: %v", err)
	}
	if cert.Subject.CommonName != name {
		t.Errorf("CN = %q, want %q", cert.Subject.CommonName, name)
	}
	return cert
}

// newCSR makes a key and a CSR for it whose CN is not the name to be
// approved, as the agent's CSR is.
func newCSR(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gatehouse-pending"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// noSecrets fails if err's text contains any of the secrets.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}
