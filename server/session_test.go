package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// browser is an HTTP client with a cookie jar, as a page would have.
type browser struct {
	c    *http.Client
	url  string
	csrf string
}

func newBrowser(t *testing.T, url string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar}, url: url}
}

func (b *browser) do(t *testing.T, method, path string, body any, headers map[string]string, out any) int {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		json.NewEncoder(&buf).Encode(body)
	}
	req, _ := http.NewRequest(method, b.url+path, &buf)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (b *browser) login(t *testing.T, token string) int {
	t.Helper()
	var info struct {
		CSRF string `json:"csrf_token"`
		Role string `json:"role"`
	}
	code := b.do(t, "POST", "/api/v1/session", map[string]string{"token": token}, nil, &info)
	b.csrf = info.CSRF
	return code
}

func TestSessionLoginAndCSRF(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	b := newBrowser(t, tb.url)
	if code := b.login(t, "gat_wrong"); code != 401 {
		t.Fatalf("login with a wrong token = %d", code)
	}
	if code := b.do(t, "GET", "/api/v1/devices", nil, nil, nil); code != 401 {
		t.Fatalf("list before login = %d", code)
	}
	if code := b.login(t, tb.admin); code != 200 || b.csrf == "" {
		t.Fatalf("login = %d, csrf %q", code, b.csrf)
	}
	if code := b.do(t, "GET", "/api/v1/devices", nil, nil, nil); code != 200 {
		t.Fatalf("list with the session = %d", code)
	}
	var e apiError
	if code := b.do(t, "POST", "/api/v1/devices/"+id+"/dismiss", nil, nil, &e); code != 403 {
		t.Fatalf("change without CSRF header = %d", code)
	}
	if code := b.do(t, "POST", "/api/v1/devices/"+id+"/dismiss", nil, map[string]string{"X-CSRF-Token": "forged"}, nil); code != 403 {
		t.Fatalf("change with a wrong CSRF header = %d", code)
	}
	cross := map[string]string{"X-CSRF-Token": b.csrf, "Origin": "https://evil.example"}
	if code := b.do(t, "POST", "/api/v1/devices/"+id+"/dismiss", nil, cross, nil); code != 403 {
		t.Fatalf("cross-origin change = %d", code)
	}
	var dev gatehouse.Device
	tb.call(t, tb.admin, "GET", "/api/v1/devices/"+id, nil, &dev)
	if dev.State != gatehouse.StatePending {
		t.Fatalf("refused changes changed the device: %s", dev.State)
	}
	ok := map[string]string{"X-CSRF-Token": b.csrf}
	if code := b.do(t, "POST", "/api/v1/devices/"+id+"/dismiss", nil, ok, nil); code != 200 {
		t.Fatalf("change with CSRF header = %d", code)
	}
	if code := b.do(t, "DELETE", "/api/v1/session", nil, ok, nil); code != 204 {
		t.Fatalf("logout = %d", code)
	}
	if code := b.do(t, "GET", "/api/v1/session", nil, nil, nil); code != 401 {
		t.Fatalf("session after logout = %d", code)
	}
}

func TestSessionRespectsRole(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	b := newBrowser(t, tb.url)
	b.login(t, tb.view)
	code := b.do(t, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": "x"}, map[string]string{"X-CSRF-Token": b.csrf}, nil)
	if code != 403 {
		t.Fatalf("viewer session approving = %d", code)
	}
}

func TestPageSecurityHeaders(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	resp, err := http.Get(tb.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP = %q", csp)
	}
	if resp.Header.Get("Referrer-Policy") == "" || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers = %v", resp.Header)
	}

	// A device answer is JSON for an agent: it keeps nosniff and no-store
	// (a proxy must not keep a bundle), not the page policy.
	resp, err = http.Post(tb.url+protocol.PathWait, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" || h.Get("Content-Security-Policy") != "" {
		t.Fatalf("device answer headers = %v", h)
	}
}

func TestStreamTellsOfChanges(t *testing.T) {
	t.Parallel()
	// The stream sends nothing but pings every 25 s, so an event naming the
	// device within toldBound is the notification. The bound is generous for
	// a loaded machine; the stream coalesces for a quarter of a second.
	const toldBound = 5 * time.Second
	tb := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tb.url+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tb.view)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	// The server watches before it sends ": connected", the first line.
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != ": connected" {
		t.Fatalf("first line %q (%v), want \": connected\"", lines.Text(), lines.Err())
	}
	events := make(chan []string)
	go func() {
		defer close(events)
		for lines.Scan() {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				var ev struct{ IDs []string }
				json.Unmarshal([]byte(data), &ev)
				select {
				case events <- ev.IDs:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	enrolled := time.Now()
	timeout := time.After(toldBound)
	for {
		select {
		case ids, ok := <-events:
			if !ok {
				t.Fatalf("stream ended without telling of %s: %v", id, lines.Err())
			}
			if len(ids) == 1 && ids[0] == id {
				t.Logf("change reported %v after the enrollment answered", time.Since(enrolled).Round(time.Millisecond))
				return
			}
		case <-timeout:
			t.Fatalf("stream did not tell of %s within %v", id, toldBound)
		}
	}
}

// A revoked token's open event stream ends at its next check rather than
// running on until the browser reconnects.
func TestStreamEndsWhenTokenRevoked(t *testing.T) {
	t.Parallel()
	tb := setupWith(t, setupOpts{recheck: 20 * time.Millisecond})
	secret, tok, err := tb.svc.CreateToken(t.Context(), provision.TokenSpec{Name: "watcher", Role: gatehouse.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tb.url+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != ": connected" {
		t.Fatalf("first line %q", lines.Text())
	}
	if _, err := tb.svc.RevokeToken(t.Context(), tok.ID); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
	}
	if ctx.Err() != nil {
		t.Fatal("the stream outlived its revoked token")
	}
}

// Guessing passwords from one address meets a 429 after the burst, with
// Retry-After, and the right password from there is refused too until the
// bucket refills.
func TestLoginAttemptsLimited(t *testing.T) {
	t.Parallel()
	tb := setupWith(t, setupOpts{loginRate: 0.001, loginBurst: 3})
	if _, err := tb.svc.CreateUser(t.Context(), provision.UserSpec{Name: "alice", Role: gatehouse.RoleViewer, Password: "the right password"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, tb.url)
	for i := range 3 {
		if code := b.do(t, "POST", "/api/v1/session", map[string]string{"user": "alice", "password": "a wrong guess"}, nil, nil); code != 401 {
			t.Fatalf("guess %d = %d, want 401", i+1, code)
		}
	}
	req, _ := http.NewRequest("POST", tb.url+"/api/v1/session", strings.NewReader(`{"user":"alice","password":"the right password"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the burst: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
