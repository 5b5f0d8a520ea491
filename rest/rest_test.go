package rest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/rest"
)

func client(url string) *rest.Client {
	return &rest.Client{
		Service: "svc", BaseURL: url, UserAgent: "gatehouse-test", RequestIDHeader: "X-Request-Id",
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Timeout: time.Second,
		Auth: func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer secret-token")
			return nil
		},
	}
}

// failing answers the first n requests with status (and Retry-After), then 200.
func failing(n int32, status int, retryAfter string) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			w.Write([]byte(`{"message":"busy"}`))
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	return srv, &calls
}

func TestRetriesTransientAnswers(t *testing.T) {
	for _, status := range []int{429, 500, 502, 503} {
		srv, calls := failing(2, status, "")
		resp, err := client(srv.URL).Do(context.Background(), rest.Request{Method: "GET", Path: "/x"})
		srv.Close()
		if err != nil || resp.Status != 200 || calls.Load() != 3 {
			t.Errorf("status %d: err %v, calls %d; want success on the third call", status, err, calls.Load())
		}
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	srv, calls := failing(1, 429, "1")
	defer srv.Close()
	start := time.Now()
	if _, err := client(srv.URL).Do(context.Background(), rest.Request{Method: "GET", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second || calls.Load() != 2 {
		t.Fatalf("retried after %v (%d calls); Retry-After asked for 1s", waited, calls.Load())
	}
}

func TestDoesNotRetryClientErrors(t *testing.T) {
	srv, calls := failing(5, 409, "")
	defer srv.Close()
	_, err := client(srv.URL).Do(context.Background(), rest.Request{Method: "POST", Path: "/x?api-version=1", Body: map[string]string{"a": "b"}})
	if rest.StatusOf(err) != 409 || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls; want one 409", err, calls.Load())
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "svc: POST /x: 409 Conflict: busy") || strings.Contains(msg, "secret-token") || strings.Contains(msg, "api-version") {
		t.Fatalf("error message = %q", msg)
	}
}

func TestGivesUpAfterRetries(t *testing.T) {
	srv, calls := failing(100, 503, "")
	defer srv.Close()
	c := client(srv.URL)
	c.Retries = 2
	_, err := c.Do(context.Background(), rest.Request{Method: "GET", Path: "/x"})
	if rest.StatusOf(err) != 503 || calls.Load() != 3 {
		t.Fatalf("err %v after %d calls; want 503 after 3", err, calls.Load())
	}
}

func TestSlowAnswerTimesOutAndRetries(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := client(srv.URL)
	c.Timeout = 100 * time.Millisecond
	if _, err := c.Do(context.Background(), rest.Request{Method: "GET", Path: "/x"}); err != nil || calls.Load() != 2 {
		t.Fatalf("err %v after %d calls; want success after a timed-out first try", err, calls.Load())
	}
	c.Retries = -1
	calls.Store(0)
	_, err := c.Do(context.Background(), rest.Request{Method: "GET", Path: "/x"})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("without retries: err %v; want a deadline error", err)
	}
}

func TestSendsHeadersAndBody(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(201)
	}))
	defer srv.Close()
	resp, err := client(srv.URL).Do(context.Background(), rest.Request{Method: "PUT", Path: "/e/1", Body: map[string]int{"n": 1},
		Header: map[string]string{"If-Match": "*"}, OK: []int{201}})
	if err != nil || resp.Status != 201 {
		t.Fatal(err)
	}
	h := got.Header
	if h.Get("User-Agent") != "gatehouse-test" || len(h.Get("X-Request-Id")) != 32 || h.Get("If-Match") != "*" ||
		h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "Bearer secret-token" || body != `{"n":1}` {
		t.Fatalf("request headers %v body %q", h, body)
	}
}

func TestRateLimitPaces(t *testing.T) {
	srv, _ := failing(0, 0, "")
	defer srv.Close()
	c := client(srv.URL)
	c.Limiter = rest.PerMinute(600) // 10/s, burst 10
	start := time.Now()
	for range 15 {
		if _, err := c.Do(context.Background(), rest.Request{Method: "GET", Path: "/x"}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("15 calls at 10/s with a burst of 10 took %v; the limiter did not pace them", took)
	}
}

func TestCancelledContextStopsRetrying(t *testing.T) {
	srv, calls := failing(100, 429, "30")
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := client(srv.URL).Do(ctx, rest.Request{Method: "GET", Path: "/x"})
	if err == nil || calls.Load() != 1 {
		t.Fatalf("err %v after %d calls; want to give up while waiting", err, calls.Load())
	}
}

// An unsafe call is repeated only when the service proved it did not act.
func TestUnsafeCallRetriedOnlyWhenNothingHappened(t *testing.T) {
	for status, calls := range map[int]int32{429: 2, 503: 2, 500: 1, 502: 1, 504: 1} {
		srv, got := failing(1, status, "")
		_, err := client(srv.URL).Do(context.Background(), rest.Request{Method: "POST", Path: "/issue", Unsafe: true})
		srv.Close()
		if got.Load() != calls || (calls == 1) != (err != nil) {
			t.Errorf("status %d: %d calls, err %v; want %d calls", status, got.Load(), err, calls)
		}
	}
	// The answer is lost after the service acted: never repeat.
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	defer srv.Close()
	if _, err := client(srv.URL).Do(context.Background(), rest.Request{Method: "POST", Path: "/issue", Unsafe: true}); err == nil || n.Load() != 1 {
		t.Errorf("dropped answer: err %v after %d calls; want one call and the error", err, n.Load())
	}
	// Nothing listens: the request never left, so trying again is safe.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c := client(dead.URL)
	c.Retries = 2
	if _, err := c.Do(context.Background(), rest.Request{Method: "POST", Path: "/issue", Unsafe: true}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("refused connection: %v", err)
	}
}

// DidNotAct tells the failures that prove nothing happened (429, 503, a
// refused connection) from those that prove nothing (500, a timeout, a
// dropped answer).
func TestDidNotAct(t *testing.T) {
	for status, want := range map[int]bool{429: true, 503: true, 500: false, 504: false} {
		srv, _ := failing(10, status, "")
		c := client(srv.URL)
		c.Retries = -1
		_, err := c.Do(context.Background(), rest.Request{Method: "POST", Path: "/issue", Unsafe: true})
		srv.Close()
		if got := rest.DidNotAct(err); got != want {
			t.Errorf("status %d: DidNotAct = %v, want %v", status, got, want)
		}
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c := client(dead.URL)
	c.Retries = -1
	if _, err := c.Do(context.Background(), rest.Request{Method: "POST", Path: "/issue"}); !rest.DidNotAct(err) {
		t.Errorf("refused connection: DidNotAct false for %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	c = client(slow.URL)
	c.Retries, c.Timeout = -1, 20*time.Millisecond
	if _, err := c.Do(context.Background(), rest.Request{Method: "POST", Path: "/issue"}); err == nil || rest.DidNotAct(err) {
		t.Errorf("timeout: DidNotAct true for %v", err)
	}
	if rest.DidNotAct(errors.New("vault: sign: csr is not a PEM CERTIFICATE REQUEST")) {
		t.Error("DidNotAct true for an error that is no call's")
	}
}

// Each attempt is one debug line that says what was called and how it
// went, and nothing a credential could hide in.
func TestLogsAttemptsAtDebug(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(403)
			w.Write([]byte(`{"message":"token secret-token is not allowed"}`))
			return
		}
		w.Write([]byte(`{"echo":"secret-token"}`))
	}))
	defer srv.Close()
	var buf strings.Builder
	c := client(srv.URL)
	c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	if _, err := c.Do(ctx, rest.Request{Method: "GET", Path: "/ok/1?api-version=2024"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, rest.Request{Method: "POST", Path: "/fail", Body: map[string]string{"password": "hunter2-hunter2"}}); rest.StatusOf(err) != 403 {
		t.Fatalf("err %v; want a 403", err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c.BaseURL, c.Retries = dead.URL, -1
	if _, err := c.Do(ctx, rest.Request{Method: "GET", Path: "/gone"}); err == nil {
		t.Fatal("a closed server answered")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`msg="backend request" service=svc method=GET path=/ok/1 status=200 duration=`,
		`msg="backend request" service=svc method=POST path=/fail status=403 duration=`,
		`msg="backend request" service=svc method=GET path=/gone status=0 duration=`,
	}
	if len(lines) != len(want) {
		t.Fatalf("log lines:\n%s\nwant %d", buf.String(), len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) || !strings.Contains(lines[i], "attempt=1") {
			t.Errorf("line %d = %s\nwant it to contain %s", i+1, lines[i], w)
		}
	}
	if !strings.Contains(lines[2], `failure="connection refused or unreachable"`) {
		t.Errorf("transport failure line = %s", lines[2])
	}
	for _, leak := range []string{"secret-token", "hunter2", "api-version"} {
		if strings.Contains(buf.String(), leak) {
			t.Errorf("the log holds %q:\n%s", leak, buf.String())
		}
	}
}

// At info level the client does not even build the line.
func TestNoLogAboveDebug(t *testing.T) {
	srv, _ := failing(0, 0, "")
	defer srv.Close()
	var buf strings.Builder
	c := client(srv.URL)
	c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if _, err := c.Do(context.Background(), rest.Request{Method: "GET", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("logged at info level: %s", buf.String())
	}
}

// A service (or a proxy) that echoes the request in its error must not get
// the call's credentials or secrets into the error, not even in part where
// the message is cut short.
func TestErrorsHideEchoedCredentials(t *testing.T) {
	const bodySecret, vaultToken = "body-secret-0123456789", "hvs.vault-token-0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":%q}`, strings.Repeat("x", 200)+" auth "+r.Header.Get("Authorization")+
			" vault "+r.Header.Get("X-Vault-Token")+" sig "+r.Header.Get("X-Signature")+" body "+string(b))
	}))
	defer srv.Close()
	c := client(srv.URL)
	c.Auth = func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "SharedAccessSignature sr=host&sig=c2VjcmV0LXNpZw%3D%3D&se=1")
		r.Header.Set("X-Signature", "custom-credential-0123456789")
		return nil
	}
	_, err := c.Do(context.Background(), rest.Request{Method: "PUT", Path: "/e", Body: map[string]string{"key": bodySecret},
		Header: map[string]string{"X-Vault-Token": vaultToken}, Secrets: []string{bodySecret}})
	var re *rest.Error
	if !errors.As(err, &re) || re.Status != 400 {
		t.Fatalf("err %v; want a 400", err)
	}
	for _, leak := range []string{"c2VjcmV0LXNpZw", "custom-credential", vaultToken[:12], bodySecret[:12], "0123456789"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q holds %q", err, leak)
		}
	}
	if !strings.Contains(re.Message, "auth SharedAccessSignature [redacted] vault [redacted]") {
		t.Errorf("message %q: want the credential replaced, the rest kept", re.Message)
	}
	// A client reading more of the answer itself redacts with the call's list.
	if got := re.Redact("echo " + bodySecret + " " + vaultToken); got != "echo [redacted] [redacted]" {
		t.Errorf("Redact = %q", got)
	}
}

// A busy run calls one backend from many workers at once; the default
// client keeps their connections for the next calls instead of dialling
// (and, on TLS, handshaking) anew as Go's default transport does past two
// idle connections a host: over 30 rounds of 8 calls held open together it
// would dial about 180 times, where at most the pool's size may be dialled
// here.
func TestDefaultClientKeepsConnectionsOfConcurrentCalls(t *testing.T) {
	const calls, rounds = 8, 30
	var dials atomic.Int64
	var mu sync.Mutex
	arrived, all := 0, make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if arrived++; arrived == calls {
			close(all)
		}
		ch := all
		mu.Unlock()
		<-ch // every call of the round is in flight, each on a connection of its own
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := &rest.Client{Service: "svc", BaseURL: srv.URL}
	for range rounds {
		mu.Lock()
		arrived, all = 0, make(chan struct{})
		mu.Unlock()
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				if _, err := c.Do(ctx, rest.Request{Method: http.MethodGet, Path: "/"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	if n := dials.Load(); n > rest.MaxIdlePerHost {
		t.Errorf("%d connections dialled for %d rounds of %d concurrent calls; want at most %d", n, rounds, calls, rest.MaxIdlePerHost)
	}
}
