package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"gatehouse"
)

// StatusError is an error answer that is not gatehouse's JSON error format,
// typically from a proxy or load balancer in front of the server.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string // a short single-line excerpt
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: server answered %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += " (not a gatehouse API response: " + e.Body + ")"
	}
	return msg
}

// do sends one request and decodes a JSON answer into out. Gatehouse error
// answers come back as *gatehouse.Error, so callers can use ErrorCode.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, method, path, q, in)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return apiError(method, path, resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: unexpected %d answer from %s (is it a gatehouse server?): %w", method, path, resp.StatusCode, c.base, err)
	}
	return nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, in any) (*http.Request, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Request-Id", requestID())
	return req, nil
}

// requestID lets an operator match a CLI call to the server's logs.
func requestID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// transportError explains a request that got no answer. The URL is the
// base only: the path is in the message already, and *url.Error would
// repeat the full URL.
func (c *Client) transportError(ctx context.Context, method, path string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && c.timeout > 0 {
			return fmt.Errorf("%s %s: no answer from %s within %s: %w", method, path, c.base, c.timeout, ctx.Err())
		}
		return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
	}
	return fmt.Errorf("cannot reach gatehouse server at %s: %w (check --server or GATEHOUSE_SERVER)", c.base, err)
}

// apiError turns an error answer into *gatehouse.Error when it is in
// gatehouse's format, and into *StatusError otherwise.
func apiError(method, path string, status int, data []byte) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		return &gatehouse.Error{Code: body.Error.Code, Message: body.Error.Message}
	}
	return &StatusError{Method: method, Path: path, Status: status, Body: excerpt(string(data), 120)}
}

func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n-- // cut on a character boundary
		}
		s = s[:n] + "..."
	}
	return s
}
