package sso

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/server"
)

var _ server.SSO = (*OIDC)(nil)

// OIDC is single sign-on with one OpenID Connect provider. It implements
// server.SSO.
type OIDC struct {
	cfg        Config
	provider   *oidc.Provider
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	client     *http.Client
	seal       *sealer
	used       usedStates
	log        *slog.Logger
	cookiePath string
	notes      []string
	now        func() time.Time
}

// Options are what New needs besides the settings.
type Options struct {
	// Key seals the flow cookie, at least 32 bytes. Every server behind
	// one address needs the same key (provision.Service.SSOFlowKey gives
	// one kept in the database), or a sign-in started on one server cannot
	// finish on another.
	Key []byte
	// Logger receives what an admin needs to fix a failing sign-in; the
	// client secret and tokens never reach it. Default discards.
	Logger *slog.Logger
	// HTTPClient makes every call to the provider; default a client with
	// Config.Timeout.
	HTTPClient *http.Client
}

// New reads the provider's discovery document, within Config.Timeout, and
// returns single sign-on with it.
func New(ctx context.Context, c Config, o Options) (*OIDC, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	seal, err := newSealer(o.Key, c)
	if err != nil {
		return nil, err
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: c.Timeout}
	}
	provider, err := discover(ctx, c, client)
	if err != nil {
		return nil, err
	}
	notes, err := checkProvider(provider)
	if err != nil {
		return nil, fmt.Errorf("oidc: provider %s: %w", c.Issuer, err)
	}
	redirect, _ := url.Parse(c.RedirectURL)
	s := &OIDC{
		cfg: c, provider: provider, client: client, seal: seal, log: o.Logger,
		cookiePath: redirect.Path, notes: notes, now: time.Now,
		oauth: oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL,
			Endpoint: provider.Endpoint(), Scopes: c.scopes()},
		verifier: provider.Verifier(&oidc.Config{ClientID: c.ClientID}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

func discover(ctx context.Context, c Config, client *http.Client) (*oidc.Provider, error) {
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), c.Timeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, c.Issuer)
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return nil, fmt.Errorf("oidc: discovery at %s: no answer within %s", c.Issuer, c.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %s", c.Issuer, printable(err.Error(), 300))
	}
	return p, nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// checkProvider refuses a provider that says it cannot do what gatehouse
// needs, and notes what it does not say.
func checkProvider(p *oidc.Provider) ([]string, error) {
	var meta struct {
		ResponseTypes []string `json:"response_types_supported"`
		PKCEMethods   []string `json:"code_challenge_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if len(meta.ResponseTypes) > 0 && !slices.Contains(meta.ResponseTypes, "code") {
		return nil, fmt.Errorf("does not offer the authorization code flow (response_types_supported: %v)", meta.ResponseTypes)
	}
	if len(meta.PKCEMethods) > 0 && !slices.Contains(meta.PKCEMethods, "S256") {
		return nil, fmt.Errorf("does not offer PKCE with S256 (code_challenge_methods_supported: %v)", meta.PKCEMethods)
	}
	var notes []string
	if len(meta.PKCEMethods) == 0 {
		notes = append(notes, "the provider does not say it supports PKCE; gatehouse sends S256 anyway")
	}
	if p.UserInfoEndpoint() == "" {
		notes = append(notes, "the provider has no userinfo endpoint: groups must come in the ID token")
	}
	return notes, nil
}

// Notes are what the provider's discovery document left unsaid, for
// `gatehouse config check`.
func (s *OIDC) Notes() []string { return slices.Clone(s.notes) }

// Name labels the login button.
func (s *OIDC) Name() string { return s.cfg.Name }

// Begin keeps a new flow's secrets in a cookie for the callback and sends
// the browser to the provider.
func (s *OIDC) Begin(w http.ResponseWriter, r *http.Request) error {
	f := newFlow(s.now(), oauth2.GenerateVerifier())
	http.SetCookie(w, s.cookie(r, s.seal.seal(f), int(FlowTTL/time.Second)))
	to := s.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	http.Redirect(w, r, to, http.StatusFound)
	return nil
}

// cookie is the flow cookie: sent only to the callback, hidden from
// scripts, and Lax because the provider's redirect back is a top-level
// navigation from another site, which Strict would strip it from.
func (s *OIDC) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: flowCookie, Value: value, Path: s.cookiePath, MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", SameSite: http.SameSiteLaxMode}
}

// Finish checks the provider's answer against the flow this browser
// started, exchanges the code, verifies the ID token and says who signed
// in with the role their groups give.
func (s *OIDC) Finish(w http.ResponseWriter, r *http.Request) (provision.ExternalIdentity, error) {
	var none provision.ExternalIdentity
	f, err := s.takeFlow(w, r)
	if err != nil {
		return none, err
	}
	q := r.URL.Query()
	// A provider that names itself in its answer (RFC 9207) must be ours,
	// or the answer was meant for another provider's flow (a mix-up).
	if iss := q.Get("iss"); iss != "" && iss != s.cfg.Issuer {
		return none, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the answer came from another identity provider (%s); start again", printable(iss, 100))
	}
	if code := q.Get("error"); code != "" {
		return none, refused(code, q.Get("error_description"))
	}
	if q.Get("code") == "" {
		return none, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider sent back no authorization code")
	}
	ctx := oidc.ClientContext(r.Context(), s.client)
	tok, err := s.exchange(ctx, q.Get("code"), f)
	if err != nil {
		return none, err
	}
	idt, c, err := s.verify(ctx, tok, f)
	if err != nil {
		return none, err
	}
	id, err := s.identity(ctx, idt, c, tok)
	if err != nil {
		return none, err
	}
	if !s.used.claim(f, s.now()) {
		return none, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this sign-in was already used; start again")
	}
	return id, nil
}

// takeFlow reads the flow cookie, clears it whatever happens next, and
// checks the callback's state against it.
func (s *OIDC) takeFlow(w http.ResponseWriter, r *http.Request) (flow, error) {
	var f flow
	c, err := r.Cookie(flowCookie)
	if err == nil {
		http.SetCookie(w, s.cookie(r, "", -1))
		f, err = s.seal.open(c.Value, s.now())
	}
	if err != nil {
		return f, gatehouse.Errorf(gatehouse.EUNAUTHORIZED,
			"no sign-in was started in this browser, or it took longer than %d minutes; start again", int(FlowTTL/time.Minute))
	}
	// The state is checked before anything else in the answer is believed:
	// without it, any site could send this browser here with its own code
	// or its own error text.
	if !sameSecret(r.URL.Query().Get("state"), f.State) {
		return f, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the answer does not belong to the sign-in this browser started; start again")
	}
	if s.used.used(f.State) {
		return f, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "this sign-in was already used; start again")
	}
	return f, nil
}

// refused is the provider's own error on the callback, shown to the
// person signing in. It is their provider's text, trimmed and printable.
func refused(code, description string) error {
	msg := "the identity provider did not sign you in: " + printable(code, 64)
	if d := printable(description, 200); d != "" {
		msg += " (" + d + ")"
	}
	return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "%s", msg)
}

func (s *OIDC) exchange(ctx context.Context, code string, f flow) (*oauth2.Token, error) {
	tok, err := s.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		msg := printable(s.scrub(re.ErrorCode), 64)
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
		}
		if d := printable(s.scrub(re.ErrorDescription), 200); d != "" {
			msg += " (" + d + ")"
		}
		s.log.Warn("single sign-on: the provider refused the code exchange", "issuer", s.cfg.Issuer, "error", msg)
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider refused to finish the sign-in: %s", msg)
	case err != nil:
		s.log.Warn("single sign-on: code exchange failed", "issuer", s.cfg.Issuer, "err", printable(s.scrub(err.Error()), 300))
		return nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "could not reach the identity provider to finish the sign-in; try again")
	}
	return tok, nil
}

// verify checks the ID token: signature, issuer, audience and expiry by
// go-oidc, then the nonce of this flow and the authorized party.
func (s *OIDC) verify(ctx context.Context, tok *oauth2.Token, f flow) (*oidc.IDToken, claims, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider sent no ID token (is the openid scope allowed for this client?)")
	}
	idt, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		reason := printable(err.Error(), 200)
		s.log.Warn("single sign-on: ID token refused", "issuer", s.cfg.Issuer, "reason", reason)
		return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider's ID token was refused: %s", reason)
	}
	if !sameSecret(idt.Nonce, f.Nonce) {
		return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the ID token was not issued for this sign-in (wrong nonce); start again")
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the ID token's claims do not parse")
	}
	if azp := c.str("azp"); azp != "" && azp != s.cfg.ClientID {
		return nil, nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the ID token was issued to another client (azp %q)", printable(azp, 64))
	}
	return idt, c, nil
}

// identity reads who signed in and their groups: from the ID token, or
// from the userinfo endpoint when the token has no groups claim (some
// providers send groups only there).
func (s *OIDC) identity(ctx context.Context, idt *oidc.IDToken, c claims, tok *oauth2.Token) (provision.ExternalIdentity, error) {
	claim := s.cfg.GroupsClaim
	groups, found, err := c.groups(claim)
	if err == nil && !found && s.provider.UserInfoEndpoint() != "" {
		var info claims
		if info, err = s.userinfo(ctx, idt.Subject, tok); err != nil {
			return provision.ExternalIdentity{}, err
		}
		groups, found, err = info.groups(claim)
		if c.displayName() == "" {
			c = info
		}
	}
	if err != nil {
		return provision.ExternalIdentity{}, gatehouse.Errorf(gatehouse.EFORBIDDEN, "%s; ask an admin", err)
	}
	if !found {
		s.log.Warn("single sign-on: no groups claim", "issuer", s.cfg.Issuer, "claim", claim)
		return provision.ExternalIdentity{}, gatehouse.Errorf(gatehouse.EFORBIDDEN,
			"the identity provider sent no %q claim, so gatehouse cannot tell your role; ask an admin", claim)
	}
	id := provision.ExternalIdentity{Issuer: idt.Issuer, Subject: idt.Subject, Name: c.displayName(), Role: s.cfg.Roles.Role(groups)}
	if id.Role == "" {
		s.log.Info("single sign-on: no group gives a role", "user", id.Name, "groups", firstOf(groups, 20))
	}
	return id, nil
}

// userinfo asks the provider about the person the ID token names, and
// refuses an answer about anyone else, as OpenID Connect requires.
func (s *OIDC) userinfo(ctx context.Context, subject string, tok *oauth2.Token) (claims, error) {
	info, err := s.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		s.log.Warn("single sign-on: userinfo failed", "issuer", s.cfg.Issuer, "err", printable(err.Error(), 300))
		return nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "could not read your groups from the identity provider; try again")
	}
	var c claims
	if info.Subject != subject || info.Claims(&c) != nil {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "the identity provider's userinfo answer is not about the person who signed in")
	}
	return c, nil
}

// scrub hides the client secret in text from the token endpoint, which
// was sent the secret and might echo it in an error.
func (s *OIDC) scrub(text string) string {
	return strings.ReplaceAll(text, s.cfg.ClientSecret, "[redacted]")
}

func firstOf(list []string, n int) []string {
	return list[:min(len(list), n)]
}

// printable makes text from outside (the provider's words, a long error
// page in an error) one printable line of at most max runes.
func printable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}
