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
)

// loginFunc says where and with what to log in. It runs at every login, so
// a rotated Kubernetes token is picked up.
type loginFunc func() (path string, body any, err error)

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

// auth keeps the client's token. With a static token it only hands it out;
// with a login method it logs in, renews and logs in again as needed.
type auth struct {
	c     *Client
	login loginFunc // nil for a static token

	// sem lets one goroutine log in or renew while the others wait for its
	// result, or give up when their context ends.
	sem chan struct{}

	mu  sync.Mutex
	cur lease
}

func newAuth(c *Client, cfg Config) *auth {
	a := &auth{c: c, sem: make(chan struct{}, 1)}
	switch {
	case cfg.Token != "":
		a.cur = lease{token: cfg.Token}
	case cfg.AppRoleID != "":
		a.login = appRoleLogin(cfg)
	default:
		a.login = kubernetesLogin(cfg)
	}
	return a
}

func appRoleLogin(cfg Config) loginFunc {
	body := map[string]string{"role_id": cfg.AppRoleID, "secret_id": cfg.AppRoleSecretID}
	return func() (string, any, error) {
		return "/v1/auth/" + cfg.AppRoleMount + "/login", body, nil
	}
}

func kubernetesLogin(cfg Config) loginFunc {
	return func() (string, any, error) {
		data, err := os.ReadFile(cfg.KubernetesJWTPath)
		if err != nil {
			return "", nil, fmt.Errorf("vault: read Kubernetes service account token: %w", err)
		}
		jwt := strings.TrimSpace(string(data))
		if jwt == "" {
			return "", nil, fmt.Errorf("vault: Kubernetes service account token %s is empty", cfg.KubernetesJWTPath)
		}
		return "/v1/auth/" + cfg.KubernetesMount + "/login", map[string]string{"role": cfg.KubernetesRole, "jwt": jwt}, nil
	}
}

// canLogin says whether a refused token can be replaced.
func (a *auth) canLogin() bool { return a.login != nil }

// token returns a token that is good for the next request.
func (a *auth) token(ctx context.Context) (string, error) {
	if l := a.current(); l.fresh(a.c.now()) || !a.canLogin() {
		return l.token, nil
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("vault: waiting for login: %w", ctx.Err())
	}
	defer func() { <-a.sem }()
	// Another goroutine may have logged in while this one waited.
	l := a.current()
	if l.fresh(a.c.now()) {
		return l.token, nil
	}
	return a.refresh(ctx, l)
}

func (a *auth) current() lease {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

func (a *auth) set(l lease) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur = l
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
func (a *auth) refresh(ctx context.Context, l lease) (string, error) {
	if l.renewable && l.alive(a.c.now()) {
		if next, err := a.renew(ctx, l); err == nil {
			a.set(next)
			return next.token, nil
		}
	}
	next, err := a.logIn(ctx)
	if err != nil {
		return "", err
	}
	a.set(next)
	return next.token, nil
}

// authBody is the "auth" part of a login or renewal answer.
type authBody struct {
	Auth *struct {
		ClientToken   string `json:"client_token"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	} `json:"auth"`
}

func (a *auth) logIn(ctx context.Context) (lease, error) {
	path, body, err := a.login()
	if err != nil {
		return lease{}, err
	}
	started := a.c.now()
	var out authBody
	if err := a.c.send(ctx, http.MethodPost, path, "", body, &out); err != nil {
		return lease{}, err
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
