package mender

// Odd but real answers, from plain httptest servers.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/rest"
)

// fake serves h and returns a PAT client for it.
func fake(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newClient(t, Config{URL: srv.URL, Token: testPAT, Timeout: 2 * time.Second})
}

const preauthOK = "devices/0b6f5bd4-1d6f-4f2b-8b5e-4a57d0fbd5a1"

var mac1 = map[string]string{"mac": "02:00:00:00:00:01"}

// sequence answers the n-th request with answers[n], repeating the last.
func sequence(calls *atomic.Int32, answers ...func(w http.ResponseWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		answers[min(n, len(answers)-1)](w)
	}
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		if code >= 400 {
			fmt.Fprint(w, `{"error":"simulated","request_id":"r"}`)
		}
	}
}

type sentCase struct {
	call       func(c *Client) error
	answer     func(w http.ResponseWriter)
	method     string
	path, body string
}

// sentCases calls each method once, with what it must send.
func sentCases(ctx context.Context) map[string]sentCase {
	return map[string]sentCase{
		"Preauthorize": {
			call:   func(c *Client) error { _, err := c.Preauthorize(ctx, mac1, "PEM", false); return err },
			answer: status(http.StatusCreated, "Location", preauthOK),
			method: "POST", path: "/api/management/v2/devauth/devices",
			body: `{"identity_data":{"mac":"02:00:00:00:00:01"},"pubkey":"PEM"}`,
		},
		"SetTag": {
			call:   func(c *Client) error { return c.SetTag(ctx, "d/1", "name", "gw-01") },
			answer: status(http.StatusOK),
			method: "PATCH", path: "/api/management/v1/inventory/devices/d%2F1/tags",
			body: `[{"name":"name","value":"gw-01"}]`,
		},
		"FindByTag": {
			call:   func(c *Client) error { _, err := c.FindByTag(ctx, "name", "gw-01"); return err },
			answer: func(w http.ResponseWriter) { fmt.Fprint(w, `[]`) },
			method: "POST", path: "/api/management/v2/inventory/filters/search",
			body: `{"page":1,"per_page":100,"filters":[{"scope":"tags","attribute":"name","type":"$eq","value":"gw-01"}],"attributes":[{"scope":"tags","attribute":"name"}]}`,
		},
		"Decommission": {
			call:   func(c *Client) error { return c.Decommission(ctx, "d1") },
			answer: status(http.StatusNoContent),
			method: "DELETE", path: "/api/management/v2/devauth/devices/d1",
		},
		"GetDevice": {
			call:   func(c *Client) error { _, err := c.GetDevice(ctx, "d1"); return err },
			answer: func(w http.ResponseWriter) { fmt.Fprint(w, `{"id":"d1"}`) },
			method: "GET", path: "/api/management/v2/devauth/devices/d1",
		},
		"Check": {
			call:   func(c *Client) error { return c.Check(ctx) },
			answer: func(w http.ResponseWriter) { fmt.Fprint(w, `[]`) },
			method: "GET", path: "/api/management/v2/devauth/devices?per_page=1",
		},
	}
}

func TestRequestsSent(t *testing.T) {
	ctx := context.Background()
	tests := sentCases(ctx)
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			sent := make(chan *http.Request, 1)
			c := fake(t, func(w http.ResponseWriter, r *http.Request) {
				r = r.Clone(context.Background())
				r.Body = io.NopCloser(bytes.NewReader(must(io.ReadAll(r.Body))))
				sent <- r
				tt.answer(w)
			})
			c.rest.UserAgent = "gatehouse-test/1"
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			got := <-sent
			if path := got.URL.RequestURI(); got.Method != tt.method || path != tt.path {
				t.Errorf("sent %s %s, want %s %s", got.Method, path, tt.method, tt.path)
			}
			if body := must(io.ReadAll(got.Body)); string(body) != tt.body {
				t.Errorf("body = %s\nwant   %s", body, tt.body)
			}
			if got.Header.Get("Authorization") != "Bearer "+testPAT || got.Header.Get("X-MEN-RequestID") == "" ||
				got.Header.Get("User-Agent") != "gatehouse-test/1" {
				t.Errorf("headers = %v, want the bearer token, a request id and the User-Agent", got.Header)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestConflictBody(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"id":"d1","identity_data":{"mac":"02:00:00:00:00:01","slot":2},"status":"accepted",
			"auth_sets":[{"id":"a1","pubkey":"KEY1","status":"accepted"},{"id":"a2","pubkey":"KEY2","status":"rejected"}]}`)
	})
	dev, err := c.Preauthorize(context.Background(), mac1, "KEY2", false)
	if !errors.Is(err, gatehouse.ErrBackendExists) || rest.StatusOf(err) != http.StatusConflict {
		t.Fatalf("err = %v, want a 409 wrapping ErrBackendExists", err)
	}
	want := gatehouse.MenderDevice{
		ID:           "d1",
		IdentityData: map[string]string{"mac": "02:00:00:00:00:01", "slot": "2"},
		AuthSets: []gatehouse.MenderAuthSet{
			{ID: "a1", PublicKey: "KEY1", Status: "accepted"},
			{ID: "a2", PublicKey: "KEY2", Status: "rejected"},
		},
		Status: "accepted",
	}
	if !reflect.DeepEqual(dev, want) {
		t.Errorf("device = %+v, want %+v", dev, want)
	}
}

// conflictServer answers preauthorize with 409 and body, and the lookup
// after it from an inventory holding found.
func conflictServer(t *testing.T, body string, found ...string) *Client {
	return fake(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST" && r.URL.Path == devicesPath:
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, body)
		case r.URL.Path == searchPath:
			w.Header().Set("X-Total-Count", fmt.Sprint(len(found)))
			json.NewEncoder(w).Encode(idList(found))
		case r.URL.Path == devicesPath+"/other":
			fmt.Fprint(w, `{"id":"other","identity_data":{"mac":"02:00:00:00:00:01","sn":"9"}}`)
		case r.URL.Path == devicesPath+"/d1":
			fmt.Fprint(w, `{"id":"d1","identity_data":{"mac":"02:00:00:00:00:01"},"auth_sets":[{"pubkey":"KEY"}]}`)
		default:
			status(http.StatusNotFound)(w)
		}
	})
}

func idList(ids []string) []map[string]string {
	out := []map[string]string{}
	for _, id := range ids {
		out = append(out, map[string]string{"id": id})
	}
	return out
}

func TestConflictUnusableBody(t *testing.T) {
	for name, body := range map[string]string{"Empty": "", "HTML": "<html>conflict</html>", "NoID": `{"status":"accepted"}`} {
		t.Run(name, func(t *testing.T) {
			// "other" shares the MAC but not the whole identity; "gone" was
			// decommissioned after inventory indexed it.
			c := conflictServer(t, body, "gone", "other", "d1")
			dev, err := c.Preauthorize(context.Background(), mac1, "KEY", false)
			if !errors.Is(err, gatehouse.ErrBackendExists) {
				t.Fatalf("err = %v, want ErrBackendExists", err)
			}
			if dev.ID != "d1" || len(dev.AuthSets) != 1 || dev.AuthSets[0].PublicKey != "KEY" {
				t.Errorf("device = %+v, want d1 with KEY", dev)
			}
		})
	}
	t.Run("NotFound", func(t *testing.T) {
		c := conflictServer(t, "")
		_, err := c.Preauthorize(context.Background(), mac1, "KEY", false)
		if err == nil || errors.Is(err, gatehouse.ErrBackendExists) || !strings.Contains(err.Error(), "409") {
			t.Errorf("err = %v, want a 409 failure that does not claim the device exists", err)
		}
	})
}

func TestRetries(t *testing.T) {
	tests := map[string]struct {
		answers []func(w http.ResponseWriter)
		calls   int32
		atLeast time.Duration
	}{
		"429RetryAfter":   {[]func(http.ResponseWriter){status(429, "Retry-After", "1"), status(201, "Location", preauthOK)}, 2, time.Second},
		"429NoRetryAfter": {[]func(http.ResponseWriter){status(429), status(429), status(201, "Location", preauthOK)}, 3, 0},
		"500ThenOK":       {[]func(http.ResponseWriter){status(500), status(201, "Location", preauthOK)}, 2, 0},
		"503HTTPDate": {[]func(http.ResponseWriter){
			func(w http.ResponseWriter) {
				status(503, "Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))(w)
			},
			status(201, "Location", preauthOK),
		}, 2, time.Second},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			c := fake(t, sequence(&calls, tt.answers...))
			start := time.Now()
			dev, err := c.Preauthorize(context.Background(), mac1, "KEY", false)
			if err != nil || dev.ID != "0b6f5bd4-1d6f-4f2b-8b5e-4a57d0fbd5a1" {
				t.Fatalf("Preauthorize = %+v, %v", dev, err)
			}
			if calls.Load() != tt.calls {
				t.Errorf("%d requests, want %d", calls.Load(), tt.calls)
			}
			if waited := time.Since(start); waited < tt.atLeast || (tt.atLeast == 0 && waited > time.Second) {
				t.Errorf("took %v, want at least %v (Retry-After) and no needless wait", waited, tt.atLeast)
			}
		})
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	var calls atomic.Int32
	c := fake(t, sequence(&calls, status(http.StatusBadRequest)))
	_, err := c.Preauthorize(context.Background(), mac1, "not a key", false)
	if rest.StatusOf(err) != http.StatusBadRequest || calls.Load() != 1 || !strings.Contains(err.Error(), "simulated") {
		t.Errorf("err = %v after %d calls, want one 400 carrying Mender's message", err, calls.Load())
	}
}

func TestGivesUpOnPersistent429(t *testing.T) {
	var calls atomic.Int32
	c := fake(t, sequence(&calls, status(http.StatusTooManyRequests)))
	err := c.Check(context.Background())
	if rest.StatusOf(err) != http.StatusTooManyRequests || calls.Load() != 5 {
		t.Errorf("err = %v after %d calls, want 429 after 1 + 4 retries", err, calls.Load())
	}
}

func TestTimeout(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL, Token: testPAT, Timeout: 50 * time.Millisecond})
	_, err := c.GetDevice(context.Background(), "d1")
	if !errors.Is(err, context.DeadlineExceeded) || calls.Load() != 5 {
		t.Fatalf("err = %v after %d calls, want a deadline error after 1 + 4 attempts", err, calls.Load())
	}
	if !strings.HasPrefix(err.Error(), "mender: GET /api/management/v2/devauth/devices/d1") {
		t.Errorf("err = %q, want it to name the call", err)
	}
	noSecrets(t, err)
}

func TestLocation(t *testing.T) {
	const id = "0b6f5bd4-1d6f-4f2b-8b5e-4a57d0fbd5a1"
	tests := map[string]string{
		"Relative":      "devices/" + id,
		"AbsolutePath":  "/api/management/v2/devauth/devices/" + id,
		"AbsoluteURL":   "https://hosted.mender.io/api/management/v2/devauth/devices/" + id,
		"TrailingSlash": "devices/" + id + "/",
		"Missing":       "",
		"NoID":          "devices/",
		"Elsewhere":     "https://example.com/",
	}
	for name, loc := range tests {
		t.Run(name, func(t *testing.T) {
			c := fake(t, func(w http.ResponseWriter, r *http.Request) {
				if loc != "" {
					w.Header().Set("Location", loc)
				}
				w.WriteHeader(http.StatusCreated)
			})
			dev, err := c.Preauthorize(context.Background(), mac1, "KEY", false)
			bad := name == "Missing" || name == "NoID" || name == "Elsewhere"
			if bad && (err == nil || !strings.HasPrefix(err.Error(), "mender: ")) {
				t.Errorf("Location %q: got %+v, %v; want a mender error", loc, dev, err)
			}
			if !bad && (err != nil || dev.ID != id) {
				t.Errorf("Location %q: got %+v, %v; want id %s", loc, dev, err, id)
			}
		})
	}
}

func TestMalformedJSON(t *testing.T) {
	ctx := context.Background()
	c := fake(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `[{"id": "d1"`) })
	if _, err := c.GetDevice(ctx, "d1"); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Errorf("GetDevice = %v, want a decode error", err)
	}
	if _, err := c.FindByTag(ctx, "name", "x"); err == nil || !strings.Contains(err.Error(), "decode") {
		t.Errorf("FindByTag = %v, want a decode error", err)
	}
}

// jwt makes an unsigned JWT with the given claims; the client never
// verifies signatures.
func jwt(claims map[string]any) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString(must(json.Marshal(claims))) + ".c2ln"
}

// loginServer issues JWTs without exp, so only a 401 tells the client to
// log in again, and accepts only the latest one, as when a session is
// revoked server-side. It counts logins and 401s.
type loginServer struct {
	logins, refused atomic.Int32
	latest          atomic.Value
	*httptest.Server
}

func newLoginServer(t *testing.T) *loginServer {
	s := &loginServer{}
	s.latest.Store("")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == loginPath {
			s.login(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+s.latest.Load().(string) {
			s.refused.Add(1)
			status(http.StatusUnauthorized)(w)
			return
		}
		fmt.Fprint(w, `[]`)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *loginServer) login(w http.ResponseWriter, r *http.Request) {
	if u, p, _ := r.BasicAuth(); u != testUser || p != testPassword {
		status(http.StatusUnauthorized)(w)
		return
	}
	tok := jwt(map[string]any{"sub": "u", "jti": fmt.Sprint(s.logins.Add(1))})
	s.latest.Store(tok)
	w.Header().Set("Content-Type", "application/jwt")
	fmt.Fprint(w, tok)
}

func TestLoginAgainOn401(t *testing.T) {
	ctx := context.Background()
	s := newLoginServer(t)
	c := newClient(t, Config{URL: s.URL, User: testUser, Password: testPassword})
	for range 2 {
		if err := c.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s.latest.Store("revoked")
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if s.logins.Load() != 2 || s.refused.Load() != 1 {
		t.Errorf("%d logins, %d refused; want 2 and 1", s.logins.Load(), s.refused.Load())
	}
}

func TestLoginRefused(t *testing.T) {
	s := newLoginServer(t)
	c := newClient(t, Config{URL: s.URL, User: testUser, Password: "wrong password"})
	err := c.Check(context.Background())
	if rest.StatusOf(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), loginPath) {
		t.Errorf("err = %v, want the login's 401", err)
	}
	noSecrets(t, err, "wrong password")
}

func TestParseLogin(t *testing.T) {
	tok := jwt(map[string]any{"exp": 1})
	tests := map[string]struct {
		body string
		ok   bool
	}{
		"Raw":      {tok, true},
		"Newline":  {tok + "\n", true},
		"JSON":     {`"` + tok + `"`, true},
		"Empty":    {"", false},
		"HTML":     {"<html>login</html>", false},
		"BadJSON":  {`"` + tok, false},
		"TwoParts": {"a.b", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseLogin([]byte(tt.body))
			if tt.ok && (err != nil || got != tok) {
				t.Errorf("parseLogin = %q, %v; want the JWT", got, err)
			}
			if !tt.ok && (err == nil || strings.Contains(err.Error(), tt.body) && tt.body != "") {
				t.Errorf("parseLogin = %q, %v; want an error without the body", got, err)
			}
		})
	}
}

func TestRefreshTime(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tests := map[string]struct {
		claims map[string]any
		want   time.Time
	}{
		"Week":         {map[string]any{"iat": 1_000_000, "exp": 1_000_000 + 7*86400}, now.Add(7*24*time.Hour - time.Minute)},
		"Short":        {map[string]any{"iat": 1_000_000, "exp": 1_000_010}, now.Add(8 * time.Second)},
		"NoIat":        {map[string]any{"exp": 1_000_010}, now.Add(8 * time.Second)},
		"Fractional":   {map[string]any{"exp": 1_000_010.5}, now.Add(8400 * time.Millisecond)},
		"NoExp":        {map[string]any{"sub": "u"}, time.Time{}},
		"ClockBehind":  {map[string]any{"iat": 2_000_000, "exp": 2_000_010}, now.Add(8 * time.Second)},
		"ClockAhead":   {map[string]any{"iat": 500_000, "exp": 500_010}, now.Add(8 * time.Second)},
		"ExpiredNoIat": {map[string]any{"exp": 10}, time.Time{}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := refreshTime(jwt(tt.claims), now); !got.Equal(tt.want) {
				t.Errorf("refreshTime = %v, want %v", got, tt.want)
			}
		})
	}
	if got := refreshTime("not-a-jwt", now); !got.IsZero() {
		t.Errorf("refreshTime(garbage) = %v, want zero", got)
	}
}

func TestEchoedCredentialsRedacted(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"bad header %s"}`, r.Header.Get("Authorization"))
	})
	err := c.Check(context.Background())
	if rest.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "Bearer [redacted]") {
		t.Errorf("err = %v, want a 400 with the echoed token redacted", err)
	}
	noSecrets(t, err)
}

func TestEchoedLoginRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"bad header %s"}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL, User: testUser, Password: testPassword})
	err := c.Check(context.Background())
	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	if rest.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "Basic [redacted]") {
		t.Errorf("err = %v, want the login's 400 with the echoed credentials redacted", err)
	}
	noSecrets(t, err, basic)
}
