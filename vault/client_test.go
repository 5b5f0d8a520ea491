package vault

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/rest"
	"gatehouse/simulate"
)

func TestIssue(t *testing.T) {
	for name, auth := range authConfigs(t) {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			s := newSim(t, simOptions(clk))
			auth.TTL = "48h"
			c := newClient(t, s.URL, auth, clk)
			got, err := c.Issue(t.Context(), "gw-01")
			if err != nil {
				t.Fatal(err)
			}
			cert := verifyCert(t, got.CertificatePEM, s.State.CACertPEM(), "gw-01")
			if got.CAChainPEM != s.State.CACertPEM() {
				t.Errorf("CA chain %q is not the root certificate", got.CAChainPEM)
			}
			if got.Serial != simulate.FormatSerial(cert.SerialNumber) {
				t.Errorf("serial %q, certificate has %x", got.Serial, cert.SerialNumber)
			}
			if d := time.Until(cert.NotAfter); d < 47*time.Hour || d > 49*time.Hour {
				t.Errorf("certificate valid for %v, want the 48h TTL", d)
			}
			if _, err := tls.X509KeyPair([]byte(got.CertificatePEM), []byte(got.PrivateKeyPEM)); err != nil {
				t.Errorf("key does not match certificate: %v", err)
			}
			if block, _ := pem.Decode([]byte(got.PrivateKeyPEM)); block == nil || block.Type != "PRIVATE KEY" {
				t.Errorf("private key is not PKCS#8 PEM")
			}
		})
	}
}

// recorder keeps every request body the server saw.
type recorder struct {
	mu     sync.Mutex
	bodies []string
}

func (r *recorder) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, req.URL.Path+" "+string(b))
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(b))
		next.ServeHTTP(w, req)
	})
}

func TestSignKeepsKeyOnDevice(t *testing.T) {
	rec := &recorder{}
	opts := simOptions(newClock())
	opts.Wrap = rec.Wrap
	s := newSim(t, opts)
	c := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, nil)
	key, csr := newCSR(t)

	got, err := c.Sign(t.Context(), "gw-02", csr)
	if err != nil {
		t.Fatal(err)
	}
	cert := verifyCert(t, got.CertificatePEM, s.State.CACertPEM(), "gw-02")
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Error("certificate is not for the CSR's key")
	}
	if got.PrivateKeyPEM != "" || got.Serial == "" {
		t.Errorf("serial %q, private key %q: want a serial and no key", got.Serial, got.PrivateKeyPEM)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, b := range rec.bodies {
		if strings.Contains(b, "PRIVATE KEY") || strings.Contains(b, "private_key_format") {
			t.Errorf("request carries a private key or asks for one: %s", b)
		}
	}
}

func TestSignRejectsNonCSR(t *testing.T) {
	s := newSim(t, simOptions(newClock()))
	c := newClient(t, s.URL, Config{Token: rootToken}, nil)
	if _, err := c.Sign(t.Context(), "gw-02", "not a csr"); err == nil {
		t.Fatal("Sign accepted a non-PEM CSR")
	}
	if n := s.Faults.Requests(); n != 0 {
		t.Errorf("%d requests sent for an invalid CSR", n)
	}
}

func TestRevoke(t *testing.T) {
	s := newSim(t, simOptions(newClock()))
	c := newClient(t, s.URL, Config{Token: rootToken}, nil)
	ctx := t.Context()
	got, err := c.Issue(ctx, "gw-03")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, got.Serial); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, got.Serial); err != nil {
		t.Errorf("second revoke: %v (Vault answers it like the first)", err)
	}
	if r := s.State.Revoked(); len(r) != 1 || r[0] != got.Serial {
		t.Errorf("revoked %v, want [%s]", r, got.Serial)
	}

	err = c.Revoke(ctx, "01:02:03")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || rest.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("unknown serial: err %v, want a 400 wrapping ErrBackendNotFound", err)
	}
	if err := c.Revoke(ctx, "not a serial"); err == nil {
		t.Error("malformed serial accepted")
	}
}

func TestLoginOncePerLease(t *testing.T) {
	for _, name := range []string{"approle", "kubernetes"} {
		t.Run(name, func(t *testing.T) {
			s := newSim(t, simOptions(newClock()))
			c := newClient(t, s.URL, authConfigs(t)[name], nil)
			for range 3 {
				if _, err := c.Issue(t.Context(), "gw-04"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Check(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := s.Logins(); n != 1 {
				t.Errorf("%d logins for 4 calls, want 1", n)
			}
		})
	}
}

// The kubelet rotates the service account token; a login must read the
// file as it is now, not as it was at start-up (once the failed login's
// backoff has passed).
func TestKubernetesRereadsJWT(t *testing.T) {
	clk := newClock()
	s := newSim(t, simOptions(clk))
	path := writeJWT(t, "old.jwt.value")
	c := newClient(t, s.URL, Config{KubernetesRole: "gatehouse", KubernetesJWTPath: path}, clk)
	_, err := c.Check(t.Context())
	if rest.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("stale JWT: err %v, want 403", err)
	}
	noSecrets(t, err, "old.jwt.value")
	if err := os.WriteFile(path, []byte("jwt.s3cret.sig"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Advance(loginBackoffMin)
	if _, err := c.Check(t.Context()); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

func TestExpiredTokenLogsInAgain(t *testing.T) {
	clk := newClock()
	s := newSim(t, simOptions(clk))
	c := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, clk)
	ctx := t.Context()
	if _, err := c.Issue(ctx, "gw-05"); err != nil {
		t.Fatal(err)
	}
	// Revoked early on the server: the client only learns from the 403.
	s.ExpireTokens()
	if _, err := c.Issue(ctx, "gw-05"); err != nil {
		t.Fatalf("after server-side expiry: %v", err)
	}
	// Past the whole lease: no point renewing, log in.
	clk.Advance(2 * time.Hour)
	if _, err := c.Issue(ctx, "gw-05"); err != nil {
		t.Fatalf("after the lease ran out: %v", err)
	}
	if l, r := s.Logins(), s.Renewals(); l != 3 || r != 0 {
		t.Errorf("%d logins, %d renewals; want 3 and 0", l, r)
	}
}

func TestRenewsBeforeExpiry(t *testing.T) {
	clk := newClock()
	s := newSim(t, simOptions(clk)) // TokenTTL 1h
	c := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, clk)
	ctx := t.Context()
	for i := range 3 {
		if _, err := c.Issue(ctx, "gw-06"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		clk.Advance(45 * time.Minute) // past two thirds of the lease
	}
	if l, r := s.Logins(), s.Renewals(); l != 1 || r != 2 {
		t.Errorf("%d logins, %d renewals; want 1 and 2", l, r)
	}
}

func TestRenewalCappedByMaxTTL(t *testing.T) {
	clk := newClock()
	opts := simOptions(clk)
	opts.TokenMaxTTL = 90 * time.Minute
	s := newSim(t, opts)
	c := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, clk)
	// Leases: 60m at 0; renewed at 45m to 45m; at 75m to 15m (capped: stop
	// renewing); at 85m a fresh login.
	for i, step := range []time.Duration{45, 30, 10, 0} {
		if _, err := c.Issue(t.Context(), "gw-07"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		clk.Advance(step * time.Minute)
	}
	if l, r := s.Logins(), s.Renewals(); l != 2 || r != 2 {
		t.Errorf("%d logins, %d renewals; want 2 and 2", l, r)
	}
}

func TestFailedRenewalLogsIn(t *testing.T) {
	clk := newClock()
	s := newSim(t, simOptions(clk))
	c := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, clk)
	if _, err := c.Issue(t.Context(), "gw-08"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(45 * time.Minute)
	s.Faults.FailNext(1, http.StatusBadRequest, 0) // the renew-self
	if _, err := c.Issue(t.Context(), "gw-08"); err != nil {
		t.Fatal(err)
	}
	if l, r := s.Logins(), s.Renewals(); l != 2 || r != 0 {
		t.Errorf("%d logins, %d renewals; want 2 and 0", l, r)
	}
}

func TestWrongCredentials(t *testing.T) {
	tests := map[string]struct {
		auth   Config
		status int
		secret string
	}{
		"token":      {Config{Token: "wrong-token-value"}, 403, "wrong-token-value"},
		"approle":    {Config{AppRoleID: "role-id-1", AppRoleSecretID: "wrong-secret-id"}, 400, "wrong-secret-id"},
		"kubernetes": {Config{KubernetesRole: "gatehouse", KubernetesJWTPath: writeJWT(t, "wrong.jwt.value")}, 403, "wrong.jwt.value"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := newSim(t, simOptions(newClock()))
			c := newClient(t, s.URL, tt.auth, nil)
			_, err := c.Issue(t.Context(), "gw-09")
			if rest.StatusOf(err) != tt.status || !strings.HasPrefix(err.Error(), "vault: ") {
				t.Fatalf("err %v, want a vault %d", err, tt.status)
			}
			noSecrets(t, err, tt.secret, rootToken, "secret-id-s3cret")
			if s.State.Len() != 0 {
				t.Error("a certificate was issued")
			}
		})
	}
}

func TestWrongTokenMessage(t *testing.T) {
	s := newSim(t, simOptions(newClock()))
	c := newClient(t, s.URL, Config{Token: "wrong-token-value"}, nil)
	_, err := c.Check(t.Context())
	for _, want := range []string{"403", "permission denied", "token"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v does not mention %q", err, want)
		}
	}
}

func TestConcurrentCallsShareOneLogin(t *testing.T) {
	s := newSim(t, simOptions(newClock()))
	c := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, nil)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := c.Issue(t.Context(), "gw-10"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := s.Logins(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

func TestSimulatedFaults(t *testing.T) {
	s := newSim(t, simOptions(newClock()))
	c := newClient(t, s.URL, Config{Token: rootToken}, nil)
	s.Faults.FailNext(2, http.StatusServiceUnavailable, 0)
	if _, err := c.Issue(t.Context(), "gw-11"); err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	if n := s.Faults.Requests(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestCheckCannotLogIn(t *testing.T) {
	path := t.TempDir() + "/missing-token"
	c := newClient(t, "http://127.0.0.1:1", Config{KubernetesRole: "gatehouse", KubernetesJWTPath: path}, nil)
	_, err := c.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "service account token") {
		t.Errorf("err %v, want a clear missing-token error", err)
	}
}

func TestIssueAnswerWithoutKey(t *testing.T) {
	d := certData{Certificate: "x", SerialNumber: "01"}
	if _, err := d.certificate(true); err == nil {
		t.Error("issue answer without private_key accepted")
	}
	d.CAChain = []string{"A\n", " B"}
	c, err := d.certificate(false)
	if err != nil || c.CAChainPEM != "A\nB\n" || c.CertificatePEM != "x\n" {
		t.Errorf("certificate %+v, err %v", c, err)
	}
}

func TestKeyPairMatchesAfterParse(t *testing.T) {
	s := newSim(t, simOptions(newClock()))
	c := newClient(t, s.URL, Config{Token: rootToken}, nil)
	got, err := c.Issue(t.Context(), "gw-12")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(got.PrivateKeyPEM))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub := parseCert(t, got.CertificatePEM).PublicKey.(*ecdsa.PublicKey)
	if !pub.Equal(key.(*ecdsa.PrivateKey).Public()) {
		t.Error("private key does not belong to the certificate")
	}
}
