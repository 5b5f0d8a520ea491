package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/rest"
)

// Tests against plain httptest servers that answer the way Azure does on a
// bad day, and check exactly what the client sends.

type seen struct {
	method, path, apiVersion string
	header                   http.Header
	body                     []byte
}

// script is a server that answers the i-th request with answers[i] (the
// last one repeating) and records every request.
type script struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newScript(t *testing.T, answers ...http.HandlerFunc) *script {
	t.Helper()
	s := &script{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, seen{r.Method, r.URL.Path, r.URL.Query().Get("api-version"), r.Header.Clone(), body})
		s.mu.Unlock()
		answers[min(n, len(answers)-1)](w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *script) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func answer(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if body != "" && !strings.HasPrefix(body, "<") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const oddHost = "odd.azure-devices-provisioning.net"

func oddDPS(t *testing.T, s *script, tune ...func(*azure.DPSConfig)) *azure.DPS {
	t.Helper()
	cfg := azure.DPSConfig{
		ConnectionString: azure.ConnectionString{HostName: oddHost, SharedAccessKeyName: "provisioningserviceowner", SharedAccessKey: symmetricKey(t)},
		Endpoint:         s.URL, IDScope: "0ne00000001", UserAgent: "gatehouse-test",
	}
	for _, f := range tune {
		f(&cfg)
	}
	return dpsClient(t, cfg)
}

const enrollmentJSON = `{"registrationId":"gw-01","deviceId":"gw-01","attestation":{"type":"symmetricKey",
 "symmetricKey":{"primaryKey":"cHJpbWFyeQ==","secondaryKey":"c2Vjb25kYXJ5"}},"capabilities":{"iotEdge":true},
 "etag":"\"e1\"","provisioningStatus":"enabled"}`

func TestDPSRequests(t *testing.T) {
	ctx := context.Background()
	e := gatehouse.Enrollment{RegistrationID: "gw-01", DeviceID: "gw-01", IoTEdge: true, PrimaryKey: "cHJpbWFyeQ==", SecondaryKey: "c2Vjb25kYXJ5", ETag: `"e0"`}
	tests := []struct {
		name, method, path string
		call               func(d *azure.DPS) error
		answer             http.HandlerFunc
		header             map[string]string
		body               string
	}{
		{"Get", "GET", "/enrollments/gw-01", func(d *azure.DPS) error { _, err := d.GetEnrollment(ctx, "gw-01"); return err },
			answer(200, enrollmentJSON), nil, ""},
		{"Create", "PUT", "/enrollments/gw-01", func(d *azure.DPS) error { _, err := d.CreateEnrollment(ctx, e); return err },
			answer(200, enrollmentJSON), map[string]string{"If-Match": `"e0"`, "Content-Type": "application/json"},
			`{"registrationId":"gw-01","deviceId":"gw-01","attestation":{"type":"symmetricKey","symmetricKey":{"primaryKey":"cHJpbWFyeQ==","secondaryKey":"c2Vjb25kYXJ5"}},"capabilities":{"iotEdge":true},"provisioningStatus":"enabled"}`},
		{"Delete", "DELETE", "/enrollments/gw-01", func(d *azure.DPS) error { return d.DeleteEnrollment(ctx, "gw-01") },
			answer(204, ""), nil, ""},
		{"Registration", "GET", "/registrations/gw-01", func(d *azure.DPS) error { _, err := d.Registration(ctx, "gw-01"); return err },
			answer(200, `{"registrationId":"gw-01","status":"assigning"}`), nil, ""},
		{"Check", "POST", "/enrollments/query", func(d *azure.DPS) error { return d.Check(ctx) },
			answer(200, `[]`), map[string]string{"x-ms-max-item-count": "1"}, `{"query":"*"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.answer)
			if err := tc.call(oddDPS(t, s)); err != nil {
				t.Fatal(err)
			}
			reqs := s.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != tc.method || r.path != tc.path || r.apiVersion != "2021-10-01" {
				t.Errorf("request = %s %s api-version=%s, want %s %s 2021-10-01", r.method, r.path, r.apiVersion, tc.method, tc.path)
			}
			auth := r.header.Get("Authorization")
			if !strings.HasPrefix(auth, "SharedAccessSignature sr="+oddHost+"&sig=") || !strings.HasSuffix(auth, "&skn=provisioningserviceowner") {
				t.Errorf("Authorization = %q", auth)
			}
			if r.header.Get("User-Agent") != "gatehouse-test" || r.header.Get("x-ms-client-request-id") == "" {
				t.Errorf("User-Agent %q, request id %q", r.header.Get("User-Agent"), r.header.Get("x-ms-client-request-id"))
			}
			for k, v := range tc.header {
				if got := r.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tc.body != "" && !jsonEqual(t, r.body, tc.body) {
				t.Errorf("body = %s, want %s", r.body, tc.body)
			}
		})
	}
}

func jsonEqual(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestDPSConflictWithBody(t *testing.T) {
	s := newScript(t, answer(409, `{"errorCode":409201,"trackingId":"t-123","message":"Enrollment already exists.","timestampUtc":"2026-01-01T00:00:00Z"}`,
		"x-ms-error-code", "409201"))
	_, err := oddDPS(t, s).CreateEnrollment(context.Background(), newEnrollment(t, "gw-01"))
	if !errors.Is(err, gatehouse.ErrBackendExists) || rest.StatusOf(err) != 409 {
		t.Fatalf("err = %v, want a 409 wrapping ErrBackendExists", err)
	}
	for _, want := range []string{"dps: PUT /enrollments/gw-01: 409", "Enrollment already exists.", "errorCode 409201", "trackingId t-123"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("a 409 was sent %d times, want once", n)
	}
}

func TestDPSRetries(t *testing.T) {
	ok := answer(200, enrollmentJSON)
	tests := []struct {
		name     string
		first    http.HandlerFunc
		minDelay time.Duration
	}{
		{"429RetryAfter", answer(429, `{"errorCode":429001,"message":"Operations are being throttled"}`, "Retry-After", "1"), 900 * time.Millisecond},
		{"429NoRetryAfter", answer(429, `{"errorCode":429001,"message":"Operations are being throttled"}`), 0},
		{"500", answer(500, `{"errorCode":500000,"message":"Internal error"}`), 0},
		{"503HTML", answer(503, "<html><body>Service Unavailable</body></html>"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, tc.first, ok)
			start := time.Now()
			e, err := oddDPS(t, s).GetEnrollment(context.Background(), "gw-01")
			if err != nil || e.PrimaryKey != "cHJpbWFyeQ==" {
				t.Fatalf("GetEnrollment = %+v, %v", e, err)
			}
			if n := len(s.requests()); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
			if took := time.Since(start); took < tc.minDelay {
				t.Errorf("retried after %v, want at least %v (Retry-After)", took, tc.minDelay)
			}
		})
	}
}

func TestDPSGivesUp(t *testing.T) {
	s := newScript(t, answer(502, "<html>Bad Gateway</html>"))
	d := oddDPS(t, s, func(c *azure.DPSConfig) { c.Retries = 2 })
	_, err := d.GetEnrollment(context.Background(), "gw-01")
	if rest.StatusOf(err) != 502 || !strings.Contains(err.Error(), "Bad Gateway") {
		t.Errorf("err = %v, want a 502 quoting the body", err)
	}
	if n := len(s.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (2 retries)", n)
	}
}

func TestDPSTokenRefusedOnce(t *testing.T) {
	expired := answer(401, `{"errorCode":401002,"trackingId":"t","message":"The SAS token has expired"}`)
	s := newScript(t, expired, answer(200, enrollmentJSON))
	if _, err := oddDPS(t, s).GetEnrollment(context.Background(), "gw-01"); err != nil {
		t.Fatalf("after one refused token: %v", err)
	}
	reqs := s.requests()
	if len(reqs) != 2 || reqs[1].header.Get("Authorization") == "" {
		t.Errorf("want one retry with a token, got %d requests", len(reqs))
	}

	always := newScript(t, expired)
	_, err := oddDPS(t, always).GetEnrollment(context.Background(), "gw-01")
	if rest.StatusOf(err) != 401 || !strings.Contains(err.Error(), "The SAS token has expired") {
		t.Errorf("err = %v, want the 401", err)
	}
	if n := len(always.requests()); n != 2 {
		t.Errorf("%d requests for bad credentials, want 2 (one fresh token, then give up)", n)
	}
}

func TestDPSSlowAnswer(t *testing.T) {
	s := newScript(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	d := oddDPS(t, s, func(c *azure.DPSConfig) { c.Timeout = 50 * time.Millisecond; c.Retries = 1 })
	start := time.Now()
	_, err := d.GetEnrollment(context.Background(), "gw-01")
	if err == nil || rest.StatusOf(err) != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a transport timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v; Timeout was not applied", took)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (a timeout is retried)", n)
	}
}

func TestDPSCallerDeadline(t *testing.T) {
	s := newScript(t, answer(429, `{}`, "Retry-After", "30"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := oddDPS(t, s).GetEnrollment(ctx, "gw-01")
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("err = %v after %v; want to give up at the caller's deadline", err, time.Since(start))
	}
}

func TestDPSNonJSONSuccess(t *testing.T) {
	s := newScript(t, answer(200, "<html>captive portal</html>"))
	_, err := oddDPS(t, s).GetEnrollment(context.Background(), "gw-01")
	if err == nil || !strings.HasPrefix(err.Error(), "dps: ") {
		t.Errorf("err = %v, want a dps decode error", err)
	}
}

func TestDPSRateLimit(t *testing.T) {
	s := newScript(t, answer(200, enrollmentJSON))
	// 600/min is 10/s with a burst of 10, so 15 calls need at least 0.5 s.
	d := oddDPS(t, s, func(c *azure.DPSConfig) { c.RateLimit = 600 })
	start := time.Now()
	for range 15 {
		if _, err := d.GetEnrollment(context.Background(), "gw-01"); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("15 calls at 600/min took %v, want at least ~500ms", took)
	}
}
