// Package ssotest runs a real OpenID Connect provider on loopback for
// tests: zitadel/oidc's op package over an in-memory store that holds one
// confidential client and the users a test adds. Its login step shows no
// page: it signs in whoever the test chose, or denies the sign-in.
package ssotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The client gatehouse is registered as.
const (
	ClientID     = "gatehouse"
	ClientSecret = "ssotest-client-secret-0123456789"
)

// User is a person the provider knows.
type User struct {
	Subject                        string
	PreferredUsername, Email, Name string
	// Groups is the groups claim's value as sent: a []string, a string,
	// or nil to send no claim.
	Groups any
}

// Request is what one authorization request asked for, as the provider
// stored it.
type Request struct {
	ClientID            string
	RedirectURI         string
	Scopes              []string
	Nonce               string
	CodeChallengeMethod string
}

// Provider is a running provider. Its methods may be called while it
// serves.
type Provider struct {
	// Issuer is the provider's issuer URL, for discovery.
	Issuer string

	srv *httptest.Server
	op  *op.Provider
	key *ecdsa.PrivateKey
	kid string

	mu       sync.Mutex
	redirect string
	claim    string // the groups claim's name
	inToken  bool   // whether groups go in the ID token, not only userinfo
	users    map[string]User
	next     string // subject the next login signs in; "" denies it
	denial   string // the error_description of a denial
	rewrite  *rewrite
	requests map[string]*authRequest
	codes    map[string]string // authorization code → request id
	tokens   map[string]string // access token id → subject
	seen     []Request
}

// Start runs a provider on loopback whose one client, ClientID with
// ClientSecret, may redirect only to redirectURI. It stops when the test
// ends.
func Start(t testing.TB, redirectURI string) *Provider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{
		Issuer: "http://" + ln.Addr().String(), key: key, kid: randomID(), redirect: redirectURI,
		claim: "groups", inToken: true, users: map[string]User{},
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]string{},
	}
	cfg := &op.Config{CodeMethodS256: true, SupportedScopes: []string{"openid", "profile", "email", "groups"}}
	rand.Read(cfg.CryptoKey[:])
	p.op, err = op.NewProvider(cfg, &storage{p}, op.StaticIssuer(p.Issuer), op.WithAllowInsecure())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", p.handleLogin)
	mux.Handle("POST "+p.op.TokenEndpoint().Relative(), p.rewriteIDTokens(p.op))
	mux.Handle("/", p.op)
	p.srv = httptest.NewUnstartedServer(mux)
	p.srv.Listener.Close()
	p.srv.Listener = ln
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

// SetUser adds a user or replaces the one with the same subject, as an
// admin changing their groups at the provider would.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[u.Subject] = u
}

// SignInAs makes the following logins sign in the user with subject.
func (p *Provider) SignInAs(subject string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = subject
}

// Deny makes the following logins fail with access_denied and
// description, as when the person cancels at the provider.
func (p *Provider) Deny(description string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next, p.denial = "", description
}

// GroupsOnlyInUserinfo keeps the groups claim out of ID tokens; only the
// userinfo endpoint sends it then, as some providers do.
func (p *Provider) GroupsOnlyInUserinfo() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inToken = false
}

// GroupsClaim renames the groups claim.
func (p *Provider) GroupsClaim(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claim = name
}

// Requests are the authorization requests so far, oldest first.
func (p *Provider) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

// handleLogin stands in for the provider's login page: it completes the
// authorization request for the chosen user at once, or denies it.
func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	p.mu.Lock()
	req, ok := p.requests[id]
	next, denial := p.next, p.denial
	if ok && next != "" {
		req.subject, req.authTime, req.done = next, time.Now(), true
	}
	p.mu.Unlock()
	switch {
	case !ok:
		http.Error(w, "unknown auth request", http.StatusBadRequest)
	case next == "":
		op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("%s", denial), p.op)
	default:
		http.Redirect(w, r, p.Issuer+"/authorize/callback?id="+url.QueryEscape(id), http.StatusFound)
	}
}

// claims are what the provider says about subject: the profile, and the
// groups claim where it belongs.
func (p *Provider) claims(subject string, forIDToken bool) (User, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[subject]
	return u, p.claim, u.Groups != nil && (p.inToken || !forIDToken)
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
