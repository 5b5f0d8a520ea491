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
	"sync"
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
	// ServerTime is the server's clock, from the Date header (zero if
	// absent), and AgentTime this gateway's when the answer came: a
	// refused signature may be a clock that is off (see clockError).
	ServerTime, AgentTime time.Time
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

	mu      sync.Mutex
	session *protocol.SessionGrant // from the last key-signed answer
}

// sessionMargin is how long before its expiry a session is given up for a
// key-signed request, so a wait held for its whole long poll never meets an
// expired session on the way.
const sessionMargin = 2 * time.Minute

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
// A wait is signed with the session the server granted, while it lasts;
// a refused session is dropped and the request signed with the key.
func (c *client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", path, err)
	}
	if g := c.usableSession(path); g != nil {
		err := c.send(ctx, path, body, out, g)
		var se *ServerError
		if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
			return err
		}
		if c.log != nil {
			c.log.Debug("server refused the session; signing with the key", "err", err)
		}
		c.dropSession(g)
	}
	return c.send(ctx, path, body, out, nil)
}

func (c *client) usableSession(path string) *protocol.SessionGrant {
	c.mu.Lock()
	defer c.mu.Unlock()
	if path != protocol.PathWait || c.session == nil || c.now().Add(sessionMargin).Unix() >= c.session.Expires {
		return nil
	}
	return c.session
}

func (c *client) dropSession(g *protocol.SessionGrant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == g {
		c.session = nil
	}
}

// send signs with the session g, or with the key when g is nil.
func (c *client) send(ctx context.Context, path string, body []byte, out any, g *protocol.SessionGrant) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build %s request: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if g != nil {
		err = protocol.SignSession(req, body, g, c.now())
	} else {
		err = protocol.SignRequest(req, body, c.key, c.now())
	}
	if err != nil {
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
	if st, ok := out.(*protocol.Status); ok && err == nil && st.Session != nil {
		c.mu.Lock()
		c.session, st.Session = st.Session, nil
		c.mu.Unlock()
	}
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
	e := &ServerError{Status: resp.StatusCode, RetryAfter: retryafter.Parse(resp.Header.Get("Retry-After"), now),
		ServerTime: serverTime(resp.Header), AgentTime: now}
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
