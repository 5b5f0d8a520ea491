package azure

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/rest"
)

// options are the settings both services share.
type options struct {
	service    string
	baseURL    string
	apiVersion string
	rateLimit  int
	rateWindow time.Duration // default a minute
	timeout    time.Duration
	retries    int
	http       *http.Client
	userAgent  string
	logger     *slog.Logger
}

// caller sends authenticated requests to one DPS instance or hub.
type caller struct {
	rest       *rest.Client
	quota      *rest.Quota
	signer     *signer
	apiVersion string
}

func newCaller(cs ConnectionString, o options) *caller {
	s := newSigner(cs)
	quota := rest.NewQuota(o.service+" "+o.baseURL, o.rateLimit, cmp.Or(o.rateWindow, time.Minute))
	return &caller{
		signer:     s,
		quota:      quota,
		apiVersion: o.apiVersion,
		rest: &rest.Client{
			Service:         o.service,
			BaseURL:         o.baseURL,
			HTTP:            capturingClient(o.http),
			Timeout:         o.timeout,
			UserAgent:       o.userAgent,
			RequestIDHeader: "x-ms-client-request-id",
			Auth:            s.auth,
			Limiter:         newLanes(quota),
			Retries:         o.retries,
			Logger:          o.logger,
		},
	}
}

// path builds an escaped path with the api-version every call needs.
func (c *caller) path(format string, ids ...string) string {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = url.PathEscape(id)
	}
	return fmt.Sprintf(format, args...) + "?api-version=" + url.QueryEscape(c.apiVersion)
}

// do sends req. A 401 is retried once with a freshly signed token: the
// cached one may be refused early by a service whose clock runs ahead.
func (c *caller) do(ctx context.Context, req rest.Request) (*rest.Response, error) {
	resp, err := c.once(ctx, req)
	if rest.StatusOf(err) == http.StatusUnauthorized && ctx.Err() == nil {
		c.signer.reset()
		resp, err = c.once(ctx, req)
	}
	return resp, classify(err)
}

func (c *caller) once(ctx context.Context, req rest.Request) (*rest.Response, error) {
	d := &errorDetails{}
	resp, err := c.rest.Do(context.WithValue(ctx, detailsKey{}, d), req)
	if err != nil {
		d.annotate(err)
		return nil, err
	}
	return resp, nil
}

// kindError marks a service error as one of gatehouse's backend sentinels
// while keeping the *rest.Error (and its status) reachable.
type kindError struct {
	err  error
	kind error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

func classify(err error) error {
	switch rest.StatusOf(err) {
	case http.StatusNotFound:
		return &kindError{err: err, kind: gatehouse.ErrBackendNotFound}
	case http.StatusConflict:
		return &kindError{err: err, kind: gatehouse.ErrBackendExists}
	}
	return err
}

// errorDetails is what an Azure error body says. rest.Error keeps only a
// message, so a transport below rest.Client reads the error code and
// tracking id (worth quoting to Azure support) into the call's context.
type errorDetails struct {
	code       string
	trackingID string
	message    string
}

type detailsKey struct{}

// annotate rewrites the rest.Error's message to carry the details.
func (d *errorDetails) annotate(err error) {
	var re *rest.Error
	if !errors.As(err, &re) || (d.code == "" && d.message == "") {
		return
	}
	msg := d.message
	if msg == "" {
		msg = re.Message
	}
	var extra []string
	if d.code != "" {
		extra = append(extra, "errorCode "+d.code)
	}
	if d.trackingID != "" {
		extra = append(extra, "trackingId "+d.trackingID)
	}
	if len(extra) > 0 {
		msg += " (" + strings.Join(extra, ", ") + ")"
	}
	re.Message = clip(re.Redact(msg), 400)
}

// parseErrorDetails reads the shapes Azure uses: DPS's flat
// {errorCode, trackingId, message}, IoT Hub's {"Message": "<that same JSON
// as a string>", "ExceptionMessage": ...} and its older
// {"Message": "ErrorCode:Name;text"}, plus the error-code headers.
func parseErrorDetails(body []byte, h http.Header) errorDetails {
	d := parseErrorJSON(body, 2)
	if d.code == "" {
		d.code = firstNonEmpty(h.Get("x-ms-error-code"), h.Get("IotHub-ErrorCode"))
	}
	return d
}

func parseErrorJSON(body []byte, depth int) errorDetails {
	var e struct {
		ErrorCode  json.RawMessage `json:"errorCode"`
		TrackingID string          `json:"trackingId"`
		Message    string          `json:"message"` // also matches "Message"
	}
	if depth == 0 || json.Unmarshal(body, &e) != nil {
		return errorDetails{}
	}
	d := errorDetails{code: strings.Trim(string(e.ErrorCode), `"`), trackingID: e.TrackingID, message: e.Message}
	msg := strings.TrimSpace(e.Message)
	switch {
	case d.code == "" && strings.HasPrefix(msg, "{"):
		if inner := parseErrorJSON([]byte(msg), depth-1); inner != (errorDetails{}) {
			return inner
		}
	case d.code == "" && strings.HasPrefix(msg, "ErrorCode:"):
		d.code, d.message, _ = strings.Cut(strings.TrimPrefix(msg, "ErrorCode:"), ";")
	}
	return d
}

// capturingClient returns a copy of hc whose transport records error
// details for annotate. The caller's client is left untouched.
func capturingClient(hc *http.Client) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	base := c.Transport
	if base == nil {
		base = rest.Transport
	}
	c.Transport = captureTransport{base: base}
	return c
}

type captureTransport struct{ base http.RoundTripper }

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	d, ok := req.Context().Value(detailsKey{}).(*errorDetails)
	if err != nil || !ok || resp.StatusCode < 400 {
		return resp, err
	}
	head, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	// Hand rest.Client the whole body, including any error reading it.
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if rerr == nil {
		*d = parseErrorDetails(head, resp.Header)
	}
	return resp, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// checkEndpoint checks an endpoint override: absolute http(s), no query.
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("endpoint %q: want an absolute http(s) URL without a query", endpoint)
	}
	return nil
}
