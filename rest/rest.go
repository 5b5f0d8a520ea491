// Package rest is the HTTP plumbing every backend client shares: timeouts,
// User-Agent and request ids, a client-side rate limit, and retries with
// exponential backoff and jitter that honour 429 and Retry-After. Errors
// carry the service's name and the status, never credentials.
package rest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Client sends requests to one service.
type Client struct {
	// Service prefixes every error, e.g. "mender".
	Service string
	// BaseURL is prepended to request paths.
	BaseURL string
	// HTTP sends the requests; default one on Transport.
	HTTP *http.Client
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
	// UserAgent names gatehouse to the service.
	UserAgent string
	// RequestIDHeader carries a fresh request id per call, e.g. "X-MEN-RequestID".
	RequestIDHeader string
	// Auth adds credentials to a request; it runs before every attempt so
	// tokens can be refreshed between retries.
	Auth func(ctx context.Context, req *http.Request) error
	// Limiter paces calls (a *rate.Limiter, a *Quota); nil means no
	// client-side limit.
	Limiter Limiter
	// Retries is how many times a retryable failure is retried; default 4.
	// Negative disables retries.
	Retries int
	// MinBackoff and MaxBackoff shape the retry delay; defaults 200 ms, 10 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives one debug line per attempt; nil logs nothing.
	Logger *slog.Logger
}

// Request is one call.
type Request struct {
	Method string
	Path   string            // joined to BaseURL; may carry a query
	Body   any               // JSON-encoded unless []byte
	Header map[string]string // extra headers
	// OK lists the statuses that count as success; default any 2xx.
	OK []int
	// Unsafe marks a call that must not be repeated blindly, because each
	// call that reaches the service acts anew (Vault's issue makes another
	// certificate). Only failures that prove it did not act are retried:
	// 429, 503 and a connection that was never made. The caller learns of
	// the others and decides.
	Unsafe bool
	// Secrets are values the request carries, in its body say, that an
	// error must never repeat should the service echo them. Credentials in
	// headers are hidden without being listed here.
	Secrets []string
}

// Response is a successful (or OK-listed) answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// Do sends req, retrying failures that may pass on a later attempt.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	body, err := encodeBody(req.Body)
	if err != nil {
		return nil, c.errorf("encode request: %w", err)
	}
	b := backoff{min: def(c.MinBackoff, 200*time.Millisecond), max: def(c.MaxBackoff, 10*time.Second)}
	retries := c.Retries
	if retries == 0 {
		retries = 4
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		resp, err := c.attempt(ctx, req, body)
		c.logAttempt(ctx, req, attempt, start, resp, err)
		if err == nil {
			return resp, nil
		}
		wait, retry := retryable(err)
		if req.Unsafe {
			retry = retry && didNotAct(err)
		}
		if !retry || attempt >= retries || ctx.Err() != nil {
			return nil, err
		}
		if err := sleep(ctx, b.next(attempt, wait)); err != nil {
			return nil, c.errorf("%s %s: gave up waiting to retry: %w", req.Method, pathOnly(req.Path), err)
		}
	}
}

func (c *Client) attempt(ctx context.Context, req Request, body []byte) (*Response, error) {
	if c.Limiter != nil {
		if err := c.Limiter.Wait(ctx); err != nil {
			return nil, c.errorf("%s %s: rate limit wait: %w", req.Method, pathOnly(req.Path), err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, def(c.Timeout, 30*time.Second))
	defer cancel()
	hreq, hide, err := c.newRequest(ctx, req, body)
	if err != nil {
		return nil, err
	}
	hresp, err := c.httpClient().Do(hreq)
	if err != nil {
		return nil, &Error{Service: c.Service, Method: req.Method, Path: pathOnly(req.Path), Err: err, transient: true}
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, 4<<20))
	if err != nil {
		return nil, &Error{Service: c.Service, Method: req.Method, Path: pathOnly(req.Path), Err: err, transient: true}
	}
	if !okStatus(hresp.StatusCode, req.OK) {
		return nil, c.statusError(req, hresp, data, hide)
	}
	return &Response{Status: hresp.StatusCode, Header: hresp.Header, Body: data}, nil
}

// newRequest builds one attempt's request, and says what its error must
// hide: the request's secrets and the credentials it carries.
func (c *Client) newRequest(ctx context.Context, req Request, body []byte) (*http.Request, *redactor, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, strings.TrimRight(c.BaseURL, "/")+req.Path, rd)
	if err != nil {
		return nil, nil, c.errorf("build request: %w", err)
	}
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", def(c.UserAgent, "gatehouse"))
	if c.RequestIDHeader != "" {
		hreq.Header.Set(c.RequestIDHeader, newRequestID())
	}
	for k, v := range req.Header {
		hreq.Header.Set(k, v)
	}
	before := hreq.Header.Clone()
	if c.Auth != nil {
		if err := c.Auth(ctx, hreq); err != nil {
			return nil, nil, c.errorf("authenticate: %w", err)
		}
	}
	return hreq, newRedactor(req.Secrets, credentialHeaders(before, hreq.Header)), nil
}

// logAttempt says what was called and how it went, for following a
// provisioning step at debug level. Only the method, the path gatehouse
// built (ids and names, no query) and the status: never headers, bodies or
// the service's error text, which may echo a credential the backend client
// has not yet redacted.
func (c *Client) logAttempt(ctx context.Context, req Request, attempt int, start time.Time, resp *Response, err error) {
	if c.Logger == nil || !c.Logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	status := StatusOf(err)
	if resp != nil {
		status = resp.Status
	}
	attrs := []slog.Attr{slog.String("service", c.Service), slog.String("method", req.Method),
		slog.String("path", pathOnly(req.Path)), slog.Int("status", status),
		slog.Duration("duration", time.Since(start)), slog.Int("attempt", attempt+1)}
	if status == 0 {
		attrs = append(attrs, slog.String("failure", failureKind(err)))
	}
	c.Logger.LogAttrs(ctx, slog.LevelDebug, "backend request", attrs...)
}

// failureKind names why an attempt got no answer, without the error's text.
func failureKind(err error) string {
	var e *Error
	switch {
	case !errors.As(err, &e):
		return "not sent" // rate limit wait or credentials failed
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case didNotAct(err):
		return "connection refused or unreachable"
	}
	return "connection failed"
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultClient
}

// MaxIdlePerHost is how many idle connections Transport keeps to one
// backend host: enough for the steps that call one backend at once
// (serve's --workers, 20 by default, plus the follow-ups'). Go's
// http.DefaultTransport keeps two, so the other calls of a busy
// provisioning run dialled anew, each with a TLS handshake, and left
// connections in TIME_WAIT behind.
const MaxIdlePerHost = 64

// Transport is what every backend client sends with unless given its own
// http.Client: http.DefaultTransport's settings (proxy from the
// environment, dial and TLS timeouts, HTTP/2) with MaxIdlePerHost.
var Transport http.RoundTripper = newTransport()

var defaultClient = &http.Client{Transport: Transport}

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxIdlePerHost
	t.MaxIdleConns = 4 * MaxIdlePerHost
	return t
}

func (c *Client) errorf(format string, args ...any) error {
	return fmt.Errorf(c.Service+": "+format, args...)
}

func encodeBody(v any) ([]byte, error) {
	switch b := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	}
	return json.Marshal(v)
}

func okStatus(code int, ok []int) bool {
	if len(ok) == 0 {
		return code >= 200 && code < 300
	}
	for _, c := range ok {
		if c == code {
			return true
		}
	}
	return false
}

func def[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pathOnly drops the query, which may carry an api-version but should never
// be echoed whole into an error.
func pathOnly(p string) string {
	path, _, _ := strings.Cut(p, "?")
	return path
}
