package mender

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"gatehouse/rest"
)

const loginPath = "/api/management/v1/useradm/auth/login"

// session holds the JWT of a user login and replaces it before its exp
// claim, or when the server refuses it.
type session struct {
	login func(ctx context.Context) (string, error)
	now   func() time.Time
	sem   chan struct{} // one login at a time; waiting for it respects ctx

	mu        sync.Mutex
	token     string
	lastToken string    // survives invalidate, for redaction
	refreshAt time.Time // zero: no exp claim, replace only when refused
}

func newSession(login func(ctx context.Context) (string, error)) *session {
	return &session{login: login, now: time.Now, sem: make(chan struct{}, 1)}
}

// jwt returns a JWT that should still be valid, logging in if needed.
// Concurrent callers share one login.
func (s *session) jwt(ctx context.Context) (string, error) {
	if t := s.current(); t != "" {
		return t, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("mender: waiting for login: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if t := s.current(); t != "" {
		return t, nil
	}
	t, err := s.login(ctx)
	if err != nil {
		return "", err
	}
	s.store(t)
	return t, nil
}

func (s *session) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.refreshAt.IsZero() && !s.now().Before(s.refreshAt) {
		return ""
	}
	return s.token
}

func (s *session) store(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.lastToken, s.refreshAt = token, token, refreshTime(token, s.now())
}

// last is the latest JWT, valid or not.
func (s *session) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastToken
}

// invalidate drops token if it is still the current one; a caller that
// raced with another's fresh login must not throw the new JWT away.
func (s *session) invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == token {
		s.token = ""
	}
}

// refreshTime is shortly before the JWT expires: a fifth of its remaining
// life early, at most a minute, so no request leaves with a JWT that expires
// on the way. The life is measured on the server's clock (exp - iat) when
// ours disagrees with it. Zero when the JWT has no readable exp.
func refreshTime(token string, now time.Time) time.Time {
	exp, iat := jwtTimes(token)
	if exp.IsZero() {
		return time.Time{}
	}
	left := exp.Sub(now)
	if !iat.IsZero() && (left <= 0 || left > exp.Sub(iat)) {
		left = exp.Sub(iat)
	}
	if left <= 0 {
		return time.Time{}
	}
	return now.Add(left - min(time.Minute, left/5))
}

// jwtTimes reads exp and iat from a JWT's payload without verifying it:
// the server verifies, the client only needs to know when to log in again.
func jwtTimes(token string) (exp, iat time.Time) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	var c struct {
		Exp float64 `json:"exp"`
		Iat float64 `json:"iat"`
	}
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return time.Time{}, time.Time{}
	}
	return unixTime(c.Exp), unixTime(c.Iat)
}

// unixTime converts a JWT NumericDate, which may carry fractions.
func unixTime(secs float64) time.Time {
	if secs <= 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(secs*float64(time.Second)))
}

// loginFunc logs in with HTTP Basic through a copy of the API's rest
// client, so logins share its timeout, retries and rate limit.
func loginFunc(api *rest.Client, user, password string) func(ctx context.Context) (string, error) {
	basic := func(_ context.Context, req *http.Request) error {
		req.SetBasicAuth(user, password)
		return nil
	}
	return func(ctx context.Context) (string, error) {
		rc := *api
		rc.Auth = basic
		resp, err := rc.Do(ctx, rest.Request{
			Method: http.MethodPost,
			Path:   loginPath,
			Header: map[string]string{"Accept": "application/jwt, application/json"},
		})
		if err != nil {
			return "", refused(err, "check the User and Password")
		}
		return parseLogin(resp.Body)
	}
}

// parseLogin takes the JWT from the raw body Mender sends as
// application/jwt, or from a JSON string. Nothing of the body goes into the
// error: it may well be a token.
func parseLogin(body []byte) (string, error) {
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, `"`) && json.Unmarshal([]byte(s), &s) != nil {
		return "", errLoginBody
	}
	if strings.Count(s, ".") != 2 || strings.ContainsAny(s, " \t\r\n") {
		return "", errLoginBody
	}
	return s, nil
}

var errLoginBody = errors.New("mender: login answered 200 without a JWT in its body")
