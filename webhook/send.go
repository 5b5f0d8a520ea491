package webhook

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/retryafter"
)

// DefaultTimeout bounds one delivery attempt when Sender.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Event is the JSON body of a delivery.
type Event struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"` // e.g. "device.state_changed"
	At            time.Time `json:"at"`
	DeviceID      string    `json:"device_id"`
	Name          string    `json:"name,omitempty"`
	State         string    `json:"state"`
	PreviousState string    `json:"previous_state,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Actor         string    `json:"actor,omitempty"`
}

// Sender delivers events to one receiver. It holds no state between calls
// and is safe for concurrent use.
type Sender struct {
	// URL is the receiver's endpoint; see ValidateURL.
	URL string
	// Secret keys the signature; it is never sent or put in an error.
	Secret []byte
	// HTTP sends the request; nil means a client on http.DefaultTransport.
	// Redirects are never followed, whatever its CheckRedirect says.
	HTTP *http.Client
	// Timeout bounds one attempt, including reading the answer; default
	// DefaultTimeout.
	Timeout time.Duration
	// Now stamps the signature; default time.Now.
	Now func() time.Time
}

// DeliveryError is a failed attempt: a status the receiver answered, or a
// failure to reach it or to build the request (Status 0, Err set).
type DeliveryError struct {
	// Host is the receiver's host[:port]. The path and query are left out
	// because a query may carry the receiver's access token.
	Host   string
	Status int
	// Retryable says a later attempt may succeed: network errors, timeouts,
	// 408, 429 and 5xx. Other 4xx and 3xx are not, but receivers are often
	// misconfigured for a while after setup, so a caller may still retry them
	// a few times before giving up.
	Retryable bool
	// RetryAfter is the wait the receiver asked for, 0 if none.
	RetryAfter time.Duration
	// Message is the start of the receiver's answer, for the operator.
	Message string
	Err     error
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("webhook: deliver")
	if e.Host != "" {
		b.WriteString(" to " + e.Host)
	}
	switch {
	case e.Status != 0:
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
	case e.Err != nil:
		// Our own errors carry the package prefix for callers of ValidateURL
		// and Verify; once is enough here.
		b.WriteString(": " + strings.TrimPrefix(e.Err.Error(), "webhook: "))
	default:
		b.WriteString(": failed")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Send makes one signed delivery attempt of e and returns nil on a 2xx
// answer, otherwise a *DeliveryError.
func (s *Sender) Send(ctx context.Context, e Event) error {
	host, body, err := s.prepare(e)
	if err != nil {
		return &DeliveryError{Host: host, Err: err}
	}
	timeout := cmp.Or(s.Timeout, DefaultTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := s.newRequest(ctx, e, body)
	if err != nil {
		return &DeliveryError{Host: host, Err: err}
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return &DeliveryError{Host: host, Retryable: true, Err: transportError(err, timeout)}
	}
	defer resp.Body.Close()
	return s.check(host, resp)
}

// prepare catches the caller's mistakes, which no retry will fix.
func (s *Sender) prepare(e Event) (host string, body []byte, err error) {
	if err := ValidateURL(s.URL); err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(s.URL)
	if len(s.Secret) == 0 {
		return u.Host, nil, ErrNoSecret
	}
	if e.ID == "" || e.Type == "" {
		// Receivers deduplicate on the id and route on the type.
		return u.Host, nil, errors.New("event needs an id and a type")
	}
	body, err = json.Marshal(e)
	if err != nil {
		return u.Host, nil, fmt.Errorf("encode event: %w", err)
	}
	return u.Host, body, nil
}

func (s *Sender) newRequest(ctx context.Context, e Event, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", withoutURL(err))
	}
	ts := s.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-webhook")
	req.Header.Set(HeaderEvent, e.Type)
	req.Header.Set(HeaderDelivery, e.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(s.Secret, ts, body))
	return req, nil
}

// client never follows redirects: a 301/302 would turn the POST into a
// GET without a body, and following one would hand a signed delivery to a
// host the operator never configured.
func (s *Sender) client() *http.Client {
	c := &http.Client{}
	if s.HTTP != nil {
		cp := *s.HTTP
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func (s *Sender) check(host string, resp *http.Response) error {
	// Read (a bounded part of) the answer even on success so the
	// connection can be reused.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	return &DeliveryError{
		Host:       host,
		Status:     code,
		Retryable:  code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500,
		RetryAfter: retryafter.Parse(resp.Header.Get("Retry-After"), s.now()),
		Message:    excerpt(s.redact(data)),
	}
}

// The shortest values of the receiver's URL hidden in its answers: query
// values and passwords from 8 characters (shorter ones are flags, versions,
// no credential), path segments from 16 (tokens are long, words of a route
// short).
const (
	minHiddenValue   = 8
	minHiddenSegment = 16
)

// redact hides what of the receiver's URL may be a credential (userinfo,
// query values, long path segments), should its answer repeat the URL it
// was called on. It runs before the answer is cut short, so no part of a
// secret escapes.
func (s *Sender) redact(text []byte) []byte {
	u, err := url.Parse(s.URL)
	if err != nil {
		return text
	}
	var hide []string
	add := func(min int, vs ...string) {
		for _, v := range vs {
			if len(v) >= min {
				hide = append(hide, v, url.QueryEscape(v))
			}
		}
	}
	if u.RawQuery != "" || u.User != nil {
		add(minHiddenValue, s.URL, u.RequestURI(), u.RawQuery)
	}
	if p, ok := u.User.Password(); ok {
		add(minHiddenValue, p)
	}
	for _, vs := range u.Query() {
		add(minHiddenValue, vs...)
	}
	add(minHiddenSegment, strings.Split(u.EscapedPath(), "/")...)
	// Longest first, so the whole URL goes before its parts.
	slices.SortFunc(hide, func(a, b string) int { return len(b) - len(a) })
	for _, h := range hide {
		text = bytes.ReplaceAll(text, []byte(h), []byte("[redacted]"))
	}
	return text
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// transportError drops the URL from the client's error and says plainly
// when the receiver was too slow.
func transportError(err error, timeout time.Duration) error {
	err = withoutURL(err)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", timeout, err)
	}
	return err
}

// withoutURL unwraps *url.Error, whose text repeats the whole URL, query
// and all, and the query may hold the receiver's token.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// excerpt keeps error text short and on one line.
func excerpt(body []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(string(body)))
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}

// ValidateURL checks that u can serve as a receiver endpoint: an absolute
// http or https URL with a host. Errors never repeat the URL, since it may
// carry credentials in its userinfo or query.
//
// Plain http is accepted: the signature still proves origin and integrity,
// but the event is readable on the wire and a captured delivery can be
// replayed within the tolerance. Whether to allow it (say, only inside a
// trusted network) is the caller's decision. The host is not resolved, so
// policy about private or loopback addresses is the caller's as well.
func ValidateURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("webhook: invalid URL: %w", withoutURL(err))
	}
	// The scheme is not echoed: "user:pass@host" parses with scheme "user".
	if p.Scheme != "https" && p.Scheme != "http" {
		return errors.New("webhook: invalid URL: scheme must be https or http")
	}
	if p.Hostname() == "" {
		return errors.New("webhook: invalid URL: no host")
	}
	return nil
}
