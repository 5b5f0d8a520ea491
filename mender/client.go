// Package mender is a client for the parts of Mender's management API that
// provisioning needs: device auth (preauthorize, get, auth set status,
// decommission) and inventory tags (set, read back, search).
package mender

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/rest"
)

var _ gatehouse.Mender = (*Client)(nil)

// Client calls one Mender server. It is safe for concurrent use.
type Client struct {
	rest    *rest.Client
	token   string   // personal access token, or ""
	secrets []string // what redact hides, besides the current JWT
	session *session // login JWTs when there is no token
	quota   *rest.Quota
}

// Quotas is the server's call budget, if one is configured, for sharing
// among replicas.
func (c *Client) Quotas() []*rest.Quota {
	if c.quota == nil {
		return nil
	}
	return []*rest.Quota{c.quota}
}

// New returns a client for cfg, which must Validate.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rc := &rest.Client{
		Service:         "mender",
		BaseURL:         strings.TrimRight(cfg.URL, "/"),
		HTTP:            cfg.HTTP,
		Timeout:         cfg.Timeout,
		UserAgent:       cfg.UserAgent,
		RequestIDHeader: "X-MEN-RequestID",
		Logger:          cfg.Logger,
	}
	c := &Client{rest: rc, token: cfg.Token, secrets: credentials(cfg)}
	if cfg.RateLimit > 0 {
		c.quota = rest.NewQuota("mender "+rc.BaseURL, cfg.RateLimit, time.Minute)
		rc.Limiter = c.quota
	}
	if cfg.Token == "" {
		c.session = newSession(loginFunc(rc, cfg.User, cfg.Password))
	}
	rc.Auth = c.authorize
	return c, nil
}

// authorize runs before every attempt, so a JWT that expired between
// retries is replaced before it is sent.
func (c *Client) authorize(ctx context.Context, req *http.Request) error {
	token := c.token
	if c.session != nil {
		var err error
		if token, err = c.session.jwt(ctx); err != nil {
			return err
		}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return nil
}

// do sends one call; its errors never show a credential.
func (c *Client) do(ctx context.Context, req rest.Request) (*rest.Response, error) {
	resp, err := c.send(ctx, req)
	return resp, c.redact(err)
}

// send calls once. With a login, a 401 means the JWT was refused before its
// exp said it would be (revoked, or the clocks disagree): log in again and
// try once more. The request was refused outright, so even a POST is safe
// to repeat.
func (c *Client) send(ctx context.Context, req rest.Request) (*rest.Response, error) {
	if c.session == nil {
		resp, err := c.rest.Do(ctx, req)
		return resp, refused(err, "the personal access token was refused: expired, revoked, or for another server?")
	}
	used, err := c.session.jwt(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.rest.Do(ctx, req)
	if rest.StatusOf(err) != http.StatusUnauthorized {
		return resp, err
	}
	c.session.invalidate(used)
	if _, err := c.session.jwt(ctx); err != nil {
		return nil, err
	}
	resp, err = c.rest.Do(ctx, req)
	return resp, refused(err, "a fresh login JWT was refused")
}

// redact hides credentials a server may have echoed into its error text.
func (c *Client) redact(err error) error {
	if err == nil {
		return nil
	}
	secrets := c.secrets
	if c.session != nil {
		secrets = slices.Concat(secrets, []string{c.session.last()})
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{err: err, msg: msg}
}

// credentials lists the forms a credential of cfg could be echoed in.
func credentials(cfg Config) []string {
	out := []string{cfg.Token, cfg.Password}
	if cfg.Password != "" {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+cfg.Password)))
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// redactedError keeps the error chain for errors.Is and rest.StatusOf.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// refused explains a 401, which on its own says little.
func refused(err error, why string) error {
	if rest.StatusOf(err) == http.StatusUnauthorized {
		return fmt.Errorf("%w (%s)", err, why)
	}
	return err
}

// kindError marks a failed call with a gatehouse sentinel while keeping the
// call's own message and its *rest.Error for rest.StatusOf.
type kindError struct {
	err  error
	kind error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

// notFound marks a 404 as gatehouse.ErrBackendNotFound.
func notFound(err error) error {
	if rest.StatusOf(err) == http.StatusNotFound {
		return &kindError{err: err, kind: gatehouse.ErrBackendNotFound}
	}
	return err
}

var errNoID = errors.New("mender: a device id is required")
