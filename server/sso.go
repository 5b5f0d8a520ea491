package server

import (
	"context"
	"net/http"
	"net/url"

	"gatehouse"
	"gatehouse/provision"
)

// SSO is a single sign-on provider the login page offers.
type SSO interface {
	// Name is shown on the login button, e.g. "Company SSO".
	Name() string
	// Begin sends the browser to the provider to sign in.
	Begin(w http.ResponseWriter, r *http.Request) error
	// Finish checks the provider's answer on the callback and says who
	// signed in, with the role their groups map to.
	Finish(w http.ResponseWriter, r *http.Request) (provision.ExternalIdentity, error)
}

// Paths of the single sign-on flow; the callback is what the provider's
// client registration must list as its redirect URI.
const (
	PathSSOLogin    = "/auth/sso/login"
	PathSSOCallback = "/auth/sso/callback"
)

type loginOptions struct {
	Password bool    `json:"password"`
	Token    bool    `json:"token"`
	SSO      *ssoOpt `json:"sso,omitempty"`
}

type ssoOpt struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// handleLoginOptions tells the login page which ways in to offer.
func (s *Server) handleLoginOptions(w http.ResponseWriter, r *http.Request) error {
	opts := loginOptions{Password: true, Token: true}
	if s.SSO != nil {
		opts.SSO = &ssoOpt{Name: s.SSO.Name(), URL: PathSSOLogin}
	}
	return writeJSON(w, http.StatusOK, opts)
}

func (s *Server) handleSSOLogin(w http.ResponseWriter, r *http.Request) error {
	if s.SSO == nil {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "single sign-on is not configured")
	}
	return s.SSO.Begin(w, r)
}

// handleSSOCallback ends the flow in the browser either way: logged in on
// the start page, or back on the login page with the reason.
func (s *Server) handleSSOCallback(w http.ResponseWriter, r *http.Request) error {
	if s.SSO == nil {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "single sign-on is not configured")
	}
	id, err := s.SSO.Finish(w, r)
	if err != nil {
		return s.ssoFailed(w, r, err)
	}
	secret, ss, err := s.svc.LoginExternal(r.Context(), id)
	if err != nil {
		return s.ssoFailed(w, r, err)
	}
	setActor(r, ss.Principal.Actor())
	s.setSessionCookie(w, r, secret)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

func (s *Server) ssoFailed(w http.ResponseWriter, r *http.Request, err error) error {
	if aerr := s.svc.AuditRefusedSignOn(context.WithoutCancel(r.Context()), r.Pattern, err); aerr != nil {
		s.Logger.ErrorContext(r.Context(), "audit: could not record a refused sign-on", "err", aerr)
	}
	if gatehouse.ErrorCode(err) == gatehouse.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "single sign-on failed", "err", err)
	} else {
		s.Logger.WarnContext(r.Context(), "single sign-on refused", "reason", gatehouse.ErrorMessage(err))
	}
	http.Redirect(w, r, "/#/login?error="+url.QueryEscape(gatehouse.ErrorMessage(err)), http.StatusSeeOther)
	return nil
}
