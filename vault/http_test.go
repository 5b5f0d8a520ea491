package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/rest"
)

// script is a hand-written Vault whose answers a test controls.
type script struct {
	mu       sync.Mutex
	requests []*http.Request
	handle   func(w http.ResponseWriter, r *http.Request, n int) // n counts from 0
}

func newScript(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) (*script, string) {
	s := &script{handle: handle}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, r)
		s.mu.Unlock()
		s.handle(w, r, n)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *script) all() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.requests...)
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func signed(w http.ResponseWriter) {
	writeJSON(w, 200, map[string]any{"data": map[string]any{
		"certificate": "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----",
		"issuing_ca":  "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----",
		"private_key": "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----", "serial_number": "0a:0b",
	}})
}

func TestTooManyRequests(t *testing.T) {
	for _, tt := range []struct {
		name       string
		retryAfter string
		min, max   time.Duration
	}{
		{"with Retry-After", "1", time.Second, 5 * time.Second},
		{"without Retry-After", "", 0, 900 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, url := newScript(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 0 {
					if tt.retryAfter != "" {
						w.Header().Set("Retry-After", tt.retryAfter)
					}
					writeJSON(w, 429, map[string]any{"errors": []string{"rate limit quota exceeded"}})
					return
				}
				signed(w)
			})
			c := newClient(t, url, Config{Token: rootToken}, nil)
			start := time.Now()
			if _, err := c.Issue(t.Context(), "gw-01"); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < tt.min || d > tt.max {
				t.Errorf("took %v, want %v..%v", d, tt.min, tt.max)
			}
			if s.count() != 2 {
				t.Errorf("%d requests, want 2", s.count())
			}
		})
	}
}

// Every issue that reaches Vault makes a certificate, so the transport
// repeats one only when Vault proved it did not act (503: sealed or
// standby); a 500 may have issued one, so the step sees it and revokes what
// it may have left on its next attempt (vault/backend.go).
func TestIssueRepeatedOnlyWhenVaultDidNotAct(t *testing.T) {
	for status, want := range map[int]int{503: 2, 500: 1, 502: 1} {
		s, url := newScript(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 0 {
				writeJSON(w, status, map[string]any{"errors": []string{"internal error"}})
				return
			}
			signed(w)
		})
		c := newClient(t, url, Config{Token: rootToken}, nil)
		got, err := c.Issue(t.Context(), "gw-01")
		if s.count() != want {
			t.Errorf("%d: %d requests, want %d", status, s.count(), want)
		}
		if want == 2 && (err != nil || got.Serial != "0a:0b" || !strings.HasSuffix(got.CAChainPEM, "-----END CERTIFICATE-----\n")) {
			t.Errorf("%d: certificate %+v, %v", status, got, err)
		}
		if want == 1 && rest.StatusOf(err) != status {
			t.Errorf("%d: err = %v, want the status passed on", status, err)
		}
	}
}

// A token that Vault stops accepting before its lease says (revoked, or the
// server restarted) is replaced by one fresh login, and every request
// carries the namespace.
func TestForbiddenAfterExpiryLogsInAgain(t *testing.T) {
	var mu sync.Mutex
	logins := 0
	s, url := newScript(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/v1/auth/approle/login":
			logins++
			tok := map[int]string{1: "tok-1", 2: "tok-2"}[logins]
			writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": tok, "lease_duration": 3600, "renewable": true}})
		case r.Header.Get("X-Vault-Token") == "tok-2" && r.URL.Path == "/v1/pki/issue/gatehouse":
			signed(w)
		default:
			writeJSON(w, 403, map[string]any{"errors": []string{"permission denied"}})
		}
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: "secret-id-x", Namespace: "team-a"}, nil)
	if _, err := c.Issue(t.Context(), "gw-01"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logins != 2 || s.count() != 4 {
		t.Errorf("%d logins, %d requests; want 2 and 4", logins, s.count())
	}
	for _, r := range s.all() {
		if r.Header.Get("X-Vault-Namespace") != "team-a" {
			t.Errorf("%s without the namespace header", r.URL.Path)
		}
	}
}

func TestForbiddenTwiceGivesUp(t *testing.T) {
	s, url := newScript(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if strings.HasSuffix(r.URL.Path, "/login") {
			writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": "tok", "lease_duration": 3600}})
			return
		}
		writeJSON(w, 403, map[string]any{"errors": []string{"permission denied"}})
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: "secret-id-x"}, nil)
	_, err := c.Check(t.Context())
	if rest.StatusOf(err) != 403 || !strings.Contains(err.Error(), "policies") {
		t.Fatalf("err %v, want a 403 pointing at the role's policies", err)
	}
	if s.count() != 4 {
		t.Errorf("%d requests, want login, lookup, login, lookup", s.count())
	}
}

func TestSlowerThanTimeout(t *testing.T) {
	_, url := newScript(t, func(w http.ResponseWriter, r *http.Request, n int) {
		// Reading the body lets the server notice the client hanging up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	c := newClient(t, url, Config{Token: rootToken, Timeout: 50 * time.Millisecond, Retries: -1}, nil)
	start := time.Now()
	_, err := c.Issue(t.Context(), "gw-01")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "vault: ") {
		t.Fatalf("err %v, want a vault timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("gave up after %v, want about the 50ms timeout", d)
	}
}

func TestNonJSONAnswers(t *testing.T) {
	_, url := newScript(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/v1/pki/revoke" {
			w.WriteHeader(400)
			w.Write([]byte("<html><body>Bad gateway config</body></html>"))
			return
		}
		w.Write([]byte("<html>login page</html>"))
	})
	c := newClient(t, url, Config{Token: rootToken}, nil)
	err := c.Revoke(t.Context(), "01:02")
	if rest.StatusOf(err) != 400 || !strings.Contains(err.Error(), "Bad gateway config") {
		t.Errorf("err %v, want the 400 with the body's text", err)
	}
	_, err = c.Issue(t.Context(), "gw-01")
	if err == nil || !strings.Contains(err.Error(), "decode response") {
		t.Errorf("err %v, want a decode error", err)
	}
}

func TestRequestShapes(t *testing.T) {
	var bodies []map[string]any
	var mu sync.Mutex
	s, url := newScript(t, func(w http.ResponseWriter, r *http.Request, n int) {
		var b map[string]any
		json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		signed(w)
	})
	_, csr := newCSR(t)
	c := newClient(t, url, Config{Token: rootToken, Mount: "/pki_int/", TTL: "720h", UserAgent: "gatehouse/test"}, nil)
	if _, err := c.Issue(t.Context(), "gw-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(t.Context(), "gw-01", csr); err != nil {
		t.Fatal(err)
	}
	want := []struct{ path, fields string }{
		{"/v1/pki_int/issue/gatehouse", "common_name=gw-01 format=pem private_key_format=pkcs8 ttl=720h"},
		{"/v1/pki_int/sign/gatehouse", "common_name=gw-01 csr format=pem ttl=720h"},
	}
	mu.Lock()
	defer mu.Unlock()
	for i, w := range want {
		r := s.all()[i]
		if r.Method != "POST" || r.URL.Path != w.path || r.Header.Get("X-Vault-Token") != rootToken || r.UserAgent() != "gatehouse/test" {
			t.Errorf("request %d: %s %s, UA %q", i, r.Method, r.URL.Path, r.UserAgent())
		}
		if got := fieldList(bodies[i]); got != w.fields {
			t.Errorf("request %d body fields %q, want %q", i, got, w.fields)
		}
	}
}

// fieldList renders a body as sorted "name=value" (value only for short strings).
func fieldList(b map[string]any) string {
	var out []string
	for _, k := range []string{"common_name", "csr", "format", "private_key_format", "ttl"} {
		v, ok := b[k]
		if !ok {
			continue
		}
		if s, _ := v.(string); len(s) < 20 {
			out = append(out, k+"="+s)
		} else {
			out = append(out, k)
		}
	}
	return strings.Join(out, " ")
}

func TestValidate(t *testing.T) {
	good := Config{Addr: "https://vault.example.com:8200", Role: "gatehouse", Token: "t"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no addr", func(c *Config) { c.Addr = "" }, "Addr is required"},
		{"bad scheme", func(c *Config) { c.Addr = "ftp://u:hunter2@h" }, "http(s) URL"},
		{"no role", func(c *Config) { c.Role = "" }, "Role is required"},
		{"role with slash", func(c *Config) { c.Role = "a/b" }, "not a valid Vault role"},
		{"bad mount", func(c *Config) { c.Mount = "pki/../sys" }, "Mount"},
		{"bad ttl", func(c *Config) { c.TTL = "a year" }, "TTL"},
		{"no auth", func(c *Config) { c.Token = "" }, "no auth method"},
		{"two auths", func(c *Config) { c.KubernetesRole = "k" }, "exactly one auth method, not token and kubernetes"},
		{"half approle", func(c *Config) { c.Token, c.AppRoleID = "", "id" }, "both AppRoleID and AppRoleSecretID"},
	}
	for _, tt := range tests {
		c := good
		tt.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error leaks a password: %v", tt.name, err)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted the config", tt.name)
		}
	}
	for _, ttl := range []string{"8760h", "30d", "3600", "90m"} {
		if c := good; func() error { c.TTL = ttl; return c.Validate() }() != nil {
			t.Errorf("TTL %q refused", ttl)
		}
	}
}

func TestConfigStringHidesSecrets(t *testing.T) {
	c := Config{Addr: "https://v", Role: "r", AppRoleID: "role-id", AppRoleSecretID: "secret-id-x", Token: "tok-x"}
	for _, s := range []string{c.String(), fmt.Sprintf("%+v", c)} {
		if strings.Contains(s, "secret-id-x") || strings.Contains(s, "tok-x") {
			t.Errorf("%q shows a secret", s)
		}
	}
}
