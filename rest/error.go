package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"gatehouse/retryafter"
)

// Error is a failed call: a status the service answered, or a transport
// failure (Status 0).
type Error struct {
	Service    string
	Method     string
	Path       string
	Status     int
	Message    string        // the service's own error text, redacted and shortened
	RetryAfter time.Duration // from the Retry-After header, if any
	Err        error         // the transport error, if any
	transient  bool
	hide       *redactor // the call's credentials and secrets
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s %s: %v", e.Service, e.Method, e.Path, e.Err)
	}
	msg := fmt.Sprintf("%s: %s %s: %d %s", e.Service, e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// StatusOf returns the HTTP status of a failed call, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Redact hides in s the credentials and secrets of the call that failed,
// for a client that reads more of the service's answer into the error than
// Message holds.
func (e *Error) Redact(s string) string { return e.hide.redact(s) }

func (c *Client) statusError(req Request, resp *http.Response, body []byte, hide *redactor) *Error {
	s := resp.StatusCode
	return &Error{
		Service: c.Service, Method: req.Method, Path: pathOnly(req.Path), Status: s,
		Message:    shorten(hide.redact(errorText(body))),
		RetryAfter: retryafter.Parse(resp.Header.Get("Retry-After"), time.Now()),
		transient:  s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500,
		hide:       hide,
	}
}

// errorText pulls a readable message out of the error bodies these services
// send ({"error":...}, {"message":...}, {"errors":[...]}), else the body. The
// caller redacts it before shortening: a secret cut in half would escape.
func errorText(body []byte) string {
	var m struct {
		Error   any      `json:"error"`
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(body, &m) == nil {
		switch {
		case m.Message != "":
			return m.Message
		case len(m.Errors) > 0:
			return strings.Join(m.Errors, "; ")
		case m.Error != nil:
			return fmt.Sprint(m.Error)
		}
	}
	return strings.TrimSpace(string(body))
}

func shorten(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// retryable says whether err may pass on a later attempt, and how long the
// service asked us to wait.
func retryable(err error) (time.Duration, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return e.RetryAfter, e.transient
}

// DidNotAct says whether a failed call's error proves the service did not
// act on it (see didNotAct), so a caller that recorded it was about to act
// can forget the record. Of an Unsafe request, rest retries only such
// failures, so the last one speaks for every try.
func DidNotAct(err error) bool { return didNotAct(err) }

// didNotAct says whether a failure proves the service did not act on the
// request: it refused it for load (429, 503), or the connection was never
// made. A timeout or a dropped connection proves nothing.
func didNotAct(err error) bool {
	switch StatusOf(err) {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case 0:
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "dial"
	}
	return false
}
