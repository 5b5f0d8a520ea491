package agent

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"gatehouse/protocol"
	"gatehouse/retryafter"
)

// maxResponse bounds what we read from the server: a bundle is a few KiB.
const maxResponse = 1 << 20

// ServerError is an error response from the server.
type ServerError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // from the Retry-After header; 0 if absent
}

func (e *ServerError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, msg)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, msg)
}

// Transient reports whether the same request may succeed later.
func (e *ServerError) Transient() bool {
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests
}

// transportError is a failure to get a usable answer at all (network error,
// truncated or garbled body, e.g. from a proxy); always worth a retry.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// client signs and sends device API requests.
type client struct {
	base      *url.URL
	key       crypto.Signer
	http      *http.Client
	now       func() time.Time
	userAgent string
	log       *slog.Logger
}

func newClient(server string, key crypto.Signer, cfg *Config) (*client, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("parse server URL: %w", err)
	}
	ua := "gatehouse-agent"
	if cfg.AgentVersion != "" {
		ua += "/" + cfg.AgentVersion
	}
	return &client{base: u, key: key, http: cfg.HTTPClient, now: cfg.Now, userAgent: ua, log: cfg.Logger}, nil
}

// post sends one signed request. Each call signs afresh (new nonce and
// timestamp), so retries never replay a request the server may have seen.
func (c *client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build %s request: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if err := protocol.SignRequest(req, body, c.key, c.now()); err != nil {
		return fmt.Errorf("sign %s request: %w", path, err)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.logRequest(ctx, path, 0, start)
		return &transportError{fmt.Errorf("POST %s: %w", path, err)}
	}
	defer resp.Body.Close()
	err = c.readResponse(resp, path, out)
	c.logRequest(ctx, path, resp.StatusCode, start)
	return err
}

// logRequest is one debug line per request: the path and status only,
// since bodies carry the sealed bundle and headers the signature.
func (c *client) logRequest(ctx context.Context, path string, status int, start time.Time) {
	if c.log != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "server request", slog.String("method", http.MethodPost),
			slog.String("path", path), slog.Int("status", status), slog.Duration("duration", time.Since(start)))
	}
}

func (c *client) readResponse(resp *http.Response, path string, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return &transportError{fmt.Errorf("POST %s: read response: %w", path, err)}
	}
	if resp.StatusCode >= 400 {
		return fmt.Errorf("POST %s: %w", path, parseServerError(resp, data, c.now()))
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &transportError{fmt.Errorf("POST %s: decode %d response: %w", path, resp.StatusCode, err)}
	}
	return nil
}

func parseServerError(resp *http.Response, data []byte, now time.Time) *ServerError {
	e := &ServerError{Status: resp.StatusCode, RetryAfter: retryafter.Parse(resp.Header.Get("Retry-After"), now)}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	}
	if e.Message == "" && e.Code == "" {
		// Not our server's error format (a proxy page, say): show a bounded,
		// single-line excerpt so the operator can tell what answered.
		e.Message = excerpt(string(data), 120)
	}
	return e
}

func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// retryHint reports whether err is transient and the delay the server asked for.
func retryHint(err error) (bool, time.Duration) {
	var se *ServerError
	if errors.As(err, &se) {
		return se.Transient(), se.RetryAfter
	}
	var te *transportError
	return errors.As(err, &te), 0
}
