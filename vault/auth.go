package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"gatehouse/rest"
)

// Login backoff: after a failed login the client waits this long before it
// tries again, doubling up to the maximum, so a wrong secret id does not
// burn through OpenBao's lockout threshold (5 failures) in a second.
const (
	loginBackoffMin = time.Second
	loginBackoffMax = 5 * time.Minute
)

// loginFunc says where and with what to log in, and which values in the
// body are secrets. It runs at every login, so a rotated Kubernetes token
// is picked up.
type loginFunc func() (path string, body any, secrets []string, err error)

// lease is a token and how long Vault said it lives.
type lease struct {
	token     string
	renewable bool
	obtained  time.Time
	ttl       time.Duration // 0: never expires
}

// fresh is true before two thirds of the lease have passed, the point at
// which the token is renewed rather than used until it dies mid-request.
func (l lease) fresh(now time.Time) bool {
	return l.token != "" && (l.ttl == 0 || now.Before(l.obtained.Add(l.ttl*2/3)))
}

func (l lease) alive(now time.Time) bool {
	return l.token != "" && (l.ttl == 0 || now.Before(l.obtained.Add(l.ttl)))
}

// flight is one login or renewal in progress; every caller that needs a
// token meanwhile waits for it and gets its result, success or failure.
type flight struct {
	done chan struct{}
	tok  string
	err  error
}

// auth keeps the client's token. With a static token it only hands it out;
// with a login method it logs in, renews and logs in again as needed.
type auth struct {
	c      *Client
	login  loginFunc // nil for a static token
	method string    // "AppRole" or "Kubernetes", for messages

	mu      sync.Mutex
	cur     lease
	flight  *flight
	failed  error     // the last failed login, handed out until retryAt
	retryAt time.Time // no login before this
	delay   time.Duration
}

func newAuth(c *Client, cfg Config) *auth {
	a := &auth{c: c}
	switch {
	case cfg.Token != "":
		a.cur = lease{token: cfg.Token}
	case cfg.AppRoleID != "":
		a.login, a.method = appRoleLogin(cfg), "AppRole"
	default:
		a.login, a.method = kubernetesLogin(cfg), "Kubernetes"
	}
	return a
}

func appRoleLogin(cfg Config) loginFunc {
	body := map[string]string{"role_id": cfg.AppRoleID, "secret_id": cfg.AppRoleSecretID}
	return func() (string, any, []string, error) {
		return "/v1/auth/" + cfg.AppRoleMount + "/login", body, []string{cfg.AppRoleSecretID}, nil
	}
}

func kubernetesLogin(cfg Config) loginFunc {
	return func() (string, any, []string, error) {
		data, err := os.ReadFile(cfg.KubernetesJWTPath)
		if err != nil {
			return "", nil, nil, fmt.Errorf("vault: read Kubernetes service account token: %w", err)
		}
		jwt := strings.TrimSpace(string(data))
		if jwt == "" {
			return "", nil, nil, fmt.Errorf("vault: Kubernetes service account token %s is empty", cfg.KubernetesJWTPath)
		}
		body := map[string]string{"role": cfg.KubernetesRole, "jwt": jwt}
		return "/v1/auth/" + cfg.KubernetesMount + "/login", body, []string{jwt}, nil
	}
}

// canLogin says whether a refused token can be replaced.
func (a *auth) canLogin() bool { return a.login != nil }

// token returns a token that is good for the next request: the current one,
// the result of the login or renewal in progress, or of a new one. While
// a failed login backs off it returns that failure without asking Vault.
func (a *auth) token(ctx context.Context) (string, error) {
	f, tok, err := a.join(ctx)
	if f == nil {
		return tok, err
	}
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("vault: waiting for login: %w", ctx.Err())
	}
}

// join decides under the lock: use the current token, report the backoff,
// or wait for a flight (starting one if none is in the air).
func (a *auth) join(ctx context.Context) (*flight, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.c.now()
	switch {
	case a.cur.fresh(now) || a.login == nil:
		return nil, a.cur.token, nil
	case a.flight != nil:
		return a.flight, "", nil
	case now.Before(a.retryAt) && a.cur.alive(now):
		return nil, a.cur.token, nil // not fresh, but better than nothing
	case now.Before(a.retryAt):
		return nil, "", &backoffError{until: a.retryAt, wait: a.retryAt.Sub(now), last: a.failed}
	}
	f := &flight{done: make(chan struct{})}
	a.flight = f
	// The flight outlives the caller that started it: the others waiting
	// must not fail because that one gave up.
	go a.fly(context.WithoutCancel(ctx), f, a.cur)
	return f, "", nil
}

func (a *auth) fly(ctx context.Context, f *flight, l lease) {
	next, err := a.refresh(ctx, l)
	a.mu.Lock()
	a.flight = nil
	switch {
	case err == nil:
		a.cur, a.failed, a.retryAt, a.delay = next, nil, time.Time{}, 0
	case countsAsFailure(err):
		a.delay = min(max(2*a.delay, loginBackoffMin), loginBackoffMax)
		a.failed, a.retryAt = err, a.c.now().Add(max(a.delay, retryAfterOf(err)))
	}
	a.mu.Unlock()
	f.tok, f.err = next.token, err
	if err != nil && l.alive(a.c.now()) {
		// The old token still works for a while: better than failing.
		f.tok, f.err = l.token, nil
	}
	close(f.done)
}

// countsAsFailure is true for a login Vault (or the network to it) refused;
// a service account token the pod cannot read is not a login attempt.
func countsAsFailure(err error) bool {
	var re *rest.Error
	return errors.As(err, &re)
}

func retryAfterOf(err error) time.Duration {
	var re *rest.Error
	if errors.As(err, &re) {
		return min(re.RetryAfter, loginBackoffMax)
	}
	return 0
}

// invalidate drops tok after Vault refused it, unless it was replaced meanwhile.
func (a *auth) invalidate(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur.token == tok {
		a.cur = lease{}
	}
}

// refresh renews a renewable token that is still alive and logs in again
// when that is not possible or fails: a failed renewal is no reason to
// fail the request the token was wanted for.
func (a *auth) refresh(ctx context.Context, l lease) (lease, error) {
	if l.renewable && l.alive(a.c.now()) {
		if next, err := a.renew(ctx, l); err == nil {
			return next, nil
		}
	}
	return a.logIn(ctx)
}

// authBody is the "auth" part of a login or renewal answer.
type authBody struct {
	Auth *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

// logIn makes exactly one login request: the rest layer does not retry it,
// because the backoff above decides when to try again.
func (a *auth) logIn(ctx context.Context) (lease, error) {
	path, body, secrets, err := a.login()
	if err != nil {
		return lease{}, err
	}
	started := a.c.now()
	var out authBody
	if err := a.c.sendOnce(ctx, http.MethodPost, path, body, secrets, &out); err != nil {
		return lease{}, a.loginError(redact(err, secrets))
	}
	if out.Auth == nil || out.Auth.ClientToken == "" {
		return lease{}, fmt.Errorf("vault: POST %s: answer carries no client_token", path)
	}
	return leaseOf(out, started), nil
}

// renew extends the token. A renewal that grants less than half the old
// lease has hit the token's max TTL; marking it not renewable makes the next
// refresh log in instead of renewing an ever shorter lease.
func (a *auth) renew(ctx context.Context, l lease) (lease, error) {
	started := a.c.now()
	var out authBody
	if err := a.c.send(ctx, http.MethodPost, "/v1/auth/token/renew-self", l.token, struct{}{}, &out); err != nil {
		return lease{}, err
	}
	if out.Auth == nil {
		return lease{}, errors.New("vault: renew-self answer carries no auth")
	}
	next := leaseOf(out, started)
	if next.token == "" {
		next.token = l.token
	}
	if next.ttl < l.ttl/2 {
		next.renewable = false
	}
	return next, nil
}

// leaseOf counts the lease from when the request started, so time spent
// on the wire shortens the lease rather than extending it.
func leaseOf(b authBody, started time.Time) lease {
	return lease{
		token:     b.Auth.ClientToken,
		renewable: b.Auth.Renewable,
		obtained:  started,
		ttl:       time.Duration(b.Auth.LeaseDuration) * time.Second,
	}
}
