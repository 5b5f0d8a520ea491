package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/webhook"
)

const secret = "whsec_5upEr-s3cret"

var (
	fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	event    = webhook.Event{
		ID: "evt_01", Type: "device.state_changed", At: fixedNow.Add(-time.Second),
		DeviceID: "dev_7", Name: "gw-hall-3", State: "provisioned", PreviousState: "provisioning",
		Actor: "alice", Reason: "all backends done <ok> & \"quoted\"",
	}
)

func headers(ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestSignVerifyRoundTrip(t *testing.T) {
	body := []byte(`{"id":"evt_01"}`)
	ts := fixedNow.Unix()
	h := headers(ts, webhook.Sign([]byte(secret), ts, body))
	if err := webhook.Verify([]byte(secret), h, body, fixedNow, 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// Computed with: printf '%s.%s' 1700000000 '{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test
	const want = "sha256=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
	if got := webhook.Sign([]byte("whsec_test"), 1700000000, []byte(`{"id":"evt_1"}`)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}

	body := []byte(`{"id":"x","state":"approved"}`)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("1772366400." + string(body)))
	if got, want := webhook.Sign([]byte(secret), 1772366400, body), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerifyRejects(t *testing.T) {
	body := []byte(`{"id":"evt_01","state":"approved"}`)
	ts := fixedNow.Unix()
	good := webhook.Sign([]byte(secret), ts, body)
	tol := 5 * time.Minute
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		want   error
	}{
		{"tampered body", secret, headers(ts, good), []byte(`{"id":"evt_01","state":"dismissed"}`), webhook.ErrMismatch},
		{"wrong secret", "whsec_other", headers(ts, good), body, webhook.ErrMismatch},
		{"empty secret", "", headers(ts, good), body, webhook.ErrNoSecret},
		{"timestamp changed", secret, headers(ts+1, good), body, webhook.ErrMismatch},
		{"stale", secret, headers(ts-600, webhook.Sign([]byte(secret), ts-600, body)), body, webhook.ErrStale},
		{"future", secret, headers(ts+600, webhook.Sign([]byte(secret), ts+600, body)), body, webhook.ErrStale},
		{"absurd future", secret, headers(1<<62, webhook.Sign([]byte(secret), 1<<62, body)), body, webhook.ErrStale},
		{"no timestamp", secret, http.Header{webhook.HeaderSignature: {good}}, body, webhook.ErrMissingHeader},
		{"no signature", secret, http.Header{webhook.HeaderTimestamp: {strconv.FormatInt(ts, 10)}}, body, webhook.ErrMissingHeader},
		{"no prefix", secret, headers(ts, strings.TrimPrefix(good, "sha256=")), body, webhook.ErrMalformed},
		{"other algorithm", secret, headers(ts, "sha1="+strings.TrimPrefix(good, "sha256=")), body, webhook.ErrMalformed},
		{"short", secret, headers(ts, good[:len(good)-2]), body, webhook.ErrMalformed},
		{"not hex", secret, headers(ts, "sha256="+strings.Repeat("zz", 32)), body, webhook.ErrMalformed},
		{"timestamp not a number", secret, http.Header{webhook.HeaderTimestamp: {"yesterday"}, webhook.HeaderSignature: {good}}, body, webhook.ErrMalformed},
		{"timestamp not canonical", secret, http.Header{webhook.HeaderTimestamp: {"+" + strconv.FormatInt(ts, 10)}, webhook.HeaderSignature: {good}}, body, webhook.ErrMalformed},
		{"timestamp in ms", secret, headers(fixedNow.UnixMilli(), webhook.Sign([]byte(secret), fixedNow.UnixMilli(), body)), body, webhook.ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify([]byte(tt.secret), tt.header, tt.body, fixedNow, tol)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyAcceptsWithinTolerance(t *testing.T) {
	body := []byte(`{}`)
	for _, skew := range []time.Duration{-5 * time.Minute, -time.Minute, time.Minute, 5 * time.Minute} {
		ts := fixedNow.Add(skew).Unix()
		if err := webhook.Verify([]byte(secret), headers(ts, webhook.Sign([]byte(secret), ts, body)), body, fixedNow, 5*time.Minute); err != nil {
			t.Errorf("skew %s: %v", skew, err)
		}
	}
}

// delivery is what a test receiver saw.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver records deliveries and answers with status (and Retry-After).
func receiver(t *testing.T, status int, retryAfter string) (*httptest.Server, chan delivery) {
	t.Helper()
	got := make(chan delivery, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case got <- delivery{r.Header.Clone(), body}:
		default:
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		fmt.Fprint(w, `{"error":"nope"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func sender(url string) *webhook.Sender {
	return &webhook.Sender{URL: url, Secret: []byte(secret), Timeout: 2 * time.Second, Now: func() time.Time { return fixedNow }}
}

func TestSendHeadersAndSignature(t *testing.T) {
	srv, got := receiver(t, http.StatusNoContent, "")
	if err := sender(srv.URL+"/hooks").Send(context.Background(), event); err != nil {
		t.Fatalf("Send: %v", err)
	}
	d := <-got
	want := map[string]string{
		"Content-Type":          "application/json",
		"User-Agent":            "gatehouse-webhook",
		webhook.HeaderEvent:     "device.state_changed",
		webhook.HeaderDelivery:  "evt_01",
		webhook.HeaderTimestamp: strconv.FormatInt(fixedNow.Unix(), 10),
		webhook.HeaderSignature: webhook.Sign([]byte(secret), fixedNow.Unix(), d.body),
	}
	for k, v := range want {
		if g := d.header.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if err := webhook.Verify([]byte(secret), d.header, d.body, fixedNow, 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
	var e webhook.Event
	if err := json.Unmarshal(d.body, &e); err != nil {
		t.Fatalf("body: %v", err)
	}
	if e != event {
		t.Errorf("body = %+v, want %+v", e, event)
	}
}

func deliveryError(t *testing.T, err error) *webhook.DeliveryError {
	t.Helper()
	var de *webhook.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v (%T), want *DeliveryError", err, err)
	}
	return de
}

func TestSendStatus(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		retryable  bool
		wait       time.Duration
	}{
		{http.StatusInternalServerError, "", true, 0},
		{http.StatusBadGateway, "", true, 0},
		{http.StatusServiceUnavailable, fixedNow.Add(90 * time.Second).Format(http.TimeFormat), true, 90 * time.Second},
		{http.StatusRequestTimeout, "", true, 0},
		{http.StatusTooManyRequests, "7", true, 7 * time.Second},
		{http.StatusTooManyRequests, "999999999999999", true, 24 * time.Hour},
		{http.StatusBadRequest, "", false, 0},
		{http.StatusUnauthorized, "", false, 0},
		{http.StatusNotFound, "", false, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.retryAfter), func(t *testing.T) {
			srv, _ := receiver(t, tt.status, tt.retryAfter)
			de := deliveryError(t, sender(srv.URL).Send(context.Background(), event))
			if de.Status != tt.status || de.Retryable != tt.retryable || de.RetryAfter != tt.wait {
				t.Errorf("got status %d retryable %v wait %s, want %d %v %s",
					de.Status, de.Retryable, de.RetryAfter, tt.status, tt.retryable, tt.wait)
			}
			if !strings.Contains(de.Error(), "nope") {
				t.Errorf("error %q lacks the receiver's message", de)
			}
		})
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	for _, status := range []int{http.StatusFound, http.StatusPermanentRedirect} {
		redirect := httptest.NewServer(http.RedirectHandler(target.URL, status))
		// A caller's client that would follow redirects must not change that.
		s := sender(redirect.URL)
		s.HTTP = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
		de := deliveryError(t, s.Send(context.Background(), event))
		redirect.Close()
		if de.Status != status || de.Retryable {
			t.Errorf("%d: got status %d retryable %v", status, de.Status, de.Retryable)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s := sender(srv.URL)
	s.Timeout = 50 * time.Millisecond
	err := s.Send(context.Background(), event)
	de := deliveryError(t, err)
	if !de.Retryable || de.Status != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v: status %d retryable %v", err, de.Status, de.Retryable)
	}
}

func TestSendNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	de := deliveryError(t, sender(url).Send(context.Background(), event))
	if !de.Retryable || de.Status != 0 {
		t.Errorf("got %v: status %d retryable %v", de, de.Status, de.Retryable)
	}
}

func TestSendRefusesWhatNoRetryFixes(t *testing.T) {
	srv, got := receiver(t, http.StatusOK, "")
	noID := event
	noID.ID = ""
	tests := []struct {
		name string
		s    *webhook.Sender
		e    webhook.Event
	}{
		{"no secret", &webhook.Sender{URL: srv.URL}, event},
		{"no event id", sender(srv.URL), noID},
		{"bad scheme", sender("ftp://example.com/hook"), event},
		{"no URL", sender(""), event},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			de := deliveryError(t, tt.s.Send(context.Background(), tt.e))
			if de.Retryable {
				t.Errorf("%v: retryable", de)
			}
		})
	}
	if len(got) != 0 {
		t.Error("a refused event reached the receiver")
	}
}

// TestErrorsKeepSecrets collects the errors of every failure path and checks
// that none repeats the signing secret or the credentials in the URL.
func TestErrorsKeepSecrets(t *testing.T) {
	const token, password = "tok_Zq9PrivateQuery", "pw_Hunter2Userinfo"
	srv500, _ := receiver(t, http.StatusInternalServerError, "")
	srv400, _ := receiver(t, http.StatusBadRequest, "")
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server may not notice the vanished client, so the test lets
		// the handler go before closing the server.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	withCreds := func(base string) string {
		return strings.Replace(base, "http://", "http://alice:"+password+"@", 1) + "/hook?token=" + token
	}
	var errs []error
	for _, base := range []string{srv500.URL, srv400.URL, slow.URL, closed.URL} {
		s := sender(withCreds(base))
		s.Timeout = 50 * time.Millisecond
		errs = append(errs, s.Send(context.Background(), event))
	}
	for _, u := range []string{
		"ftp://alice:" + password + "@example.com/?token=" + token,
		"alice:" + password + "@example.com/?token=" + token,
		"http://alice:" + password + "@exa mple.com/?token=" + token,
		"http://alice:" + password + "@/?token=" + token,
	} {
		errs = append(errs, webhook.ValidateURL(u), sender(u).Send(context.Background(), event))
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
			for _, leak := range []string{secret, token, password} {
				if strings.Contains(text, leak) {
					t.Errorf("error %q contains %q", text, leak)
				}
			}
		}
	}
}

// A receiver that repeats the URL it was called on, as error pages do,
// must not put the URL's credentials into the error: it goes to the log and
// the job's record. Ordinary words of the route stay readable.
func TestErrorsHideEchoedURL(t *testing.T) {
	const token, pathToken, password = "tok_Zq9PrivateQuery", "T0KENinThePath1234567890", "pw_Hunter2Userinfo"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		w.WriteHeader(http.StatusBadRequest)
		// Long enough that a cut made before redacting would split a secret.
		fmt.Fprintf(w, "%s no hook at %s for %s:%s (query %s, token %s)", strings.Repeat("x", 150), r.URL, u, p, r.URL.RawQuery, r.URL.Query().Get("token"))
	}))
	defer echo.Close()
	url := strings.Replace(echo.URL, "http://", "http://alice:"+password+"@", 1) + "/hooks/" + pathToken + "?token=" + token
	err := sender(url).Send(context.Background(), event)
	var de *webhook.DeliveryError
	if !errors.As(err, &de) || de.Status != http.StatusBadRequest {
		t.Fatalf("err %v; want a 400 DeliveryError", err)
	}
	for _, leak := range []string{token, pathToken, password, token[:10], pathToken[len(pathToken)-10:]} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains %q", err, leak)
		}
	}
	if !strings.Contains(de.Message, "no hook at [redacted] for alice:[redacted]") {
		t.Errorf("message %q lost what the receiver said", de.Message)
	}
}

func TestValidateURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://hooks.example.com/gatehouse":        true,
		"https://hooks.example.com:8443/x?token=abc": true,
		"http://10.0.0.5/hook":                       true, // allowed; the caller decides about plain http
		"https://user:pw@hooks.example.com/":         true,
		"HTTPS://hooks.example.com/":                 true,
		"ftp://hooks.example.com/":                   false,
		"hooks.example.com/hook":                     false,
		"https://":                                   false,
		"https:///path":                              false,
		"https://:443/":                              false,
		"":                                           false,
		"https://hooks.example.com/\x00":             false,
	} {
		if err := webhook.ValidateURL(u); (err == nil) != ok {
			t.Errorf("ValidateURL(%q) = %v, want ok=%v", u, err, ok)
		}
	}
}

// verified is the Go snippet from doc.go, kept here verbatim so the
// documented receiver code is known to accept real deliveries.
func verified(secret []byte, h http.Header, body []byte) bool {
	ts := h.Get("X-Gatehouse-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if age := time.Since(time.Unix(sec, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Get("X-Gatehouse-Signature")))
}

// capture makes one real delivery (signed now) and returns what arrived.
func capture(t *testing.T) delivery {
	t.Helper()
	srv, got := receiver(t, http.StatusOK, "")
	s := sender(srv.URL)
	s.Now = nil
	if err := s.Send(context.Background(), event); err != nil {
		t.Fatalf("Send: %v", err)
	}
	return <-got
}

func TestDocGoSnippet(t *testing.T) {
	d := capture(t)
	if !verified([]byte(secret), d.header, d.body) {
		t.Error("the doc.go snippet rejects a real delivery")
	}
	d.body = append(d.body, ' ')
	if verified([]byte(secret), d.header, d.body) {
		t.Error("the doc.go snippet accepts a tampered body")
	}
}

// opensslRecipe is the shell line from doc.go; the test checks it is still
// there, then runs it.
const opensslRecipe = `printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret"`

func TestOpenSSLRecipe(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), opensslRecipe) {
		t.Fatal("doc.go no longer shows the openssl recipe this test runs")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	d := capture(t)
	cmd := exec.Command("sh", "-c", opensslRecipe)
	cmd.Env = append(os.Environ(), "ts="+d.header.Get(webhook.HeaderTimestamp), "body="+string(d.body), "secret="+secret)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	// OpenSSL 3 prints "SHA2-256(stdin)= <hex>", 1.1 prints "(stdin)= <hex>".
	i := strings.LastIndex(string(out), "= ")
	if i < 0 {
		t.Fatalf("unexpected openssl output %q", out)
	}
	got := "sha256=" + strings.TrimSpace(string(out[i+2:]))
	if want := d.header.Get(webhook.HeaderSignature); got != want {
		t.Errorf("openssl recipe gives %s, header is %s", got, want)
	}
}

func ExampleSign() {
	fmt.Println(webhook.Sign([]byte("whsec_test"), 1700000000, []byte(`{"id":"evt_1"}`)))
	// Output: sha256=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925
}
