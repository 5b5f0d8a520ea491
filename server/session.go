package server

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"time"

	"gatehouse"
	"gatehouse/provision"
)

// sessionCookie carries a browser session's secret. HttpOnly keeps it from
// scripts; SameSite=Strict keeps other sites from riding on it (the page's
// own requests after a single sign-on redirect are same-site, so it works).
const sessionCookie = "gatehouse_session"

// csrfHeader must echo the session's CSRF token on every cookie-authenticated
// change: a page on another origin cannot read it, so it cannot forge one.
const csrfHeader = "X-CSRF-Token"

type sessionInfo struct {
	CSRFToken string                  `json:"csrf_token"`
	Kind      gatehouse.PrincipalKind `json:"kind"`
	Name      string                  `json:"name"`
	Role      gatehouse.Role          `json:"role"`
	// SimulatedBackends says the server provisions into simulators, so
	// the page can say loudly that nothing real is provisioned.
	SimulatedBackends bool `json:"simulated_backends,omitempty"`
}

// loginRequest is either a user name and password or an API token.
type loginRequest struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "cross-origin login refused")
	}
	if err := s.loginLimit.check(r, "login attempts"); err != nil {
		return err
	}
	var req loginRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	secret, ss, err := s.login(r, req)
	if err != nil {
		return err
	}
	setActor(r, ss.Principal.Actor())
	s.setSessionCookie(w, r, secret)
	return writeJSON(w, http.StatusOK, s.infoOf(ss))
}

func (s *Server) login(r *http.Request, req loginRequest) (string, *provision.Session, error) {
	switch {
	case req.Token != "" && req.User == "" && req.Password == "":
		return s.svc.LoginToken(r.Context(), req.Token)
	case req.Token == "" && req.User != "" && req.Password != "":
		return s.svc.LoginPassword(r.Context(), req.User, req.Password)
	}
	return "", nil, gatehouse.Errorf(gatehouse.EINVALID, "send either user and password, or token")
}

func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, secret string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: secureRequest(r), Expires: time.Now().Add(provision.SessionTTL),
	})
}

func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) error {
	ss, err := s.session(r)
	if err != nil {
		return err
	}
	setActor(r, ss.Principal.Actor())
	return writeJSON(w, http.StatusOK, s.infoOf(ss))
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if ss, err := s.session(r); err == nil {
		if err := checkCSRF(r, ss); err != nil {
			return err
		}
		c, _ := r.Cookie(sessionCookie)
		if err := s.svc.Logout(r.Context(), c.Value); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secureRequest(r), MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) infoOf(ss *provision.Session) sessionInfo {
	p := ss.Principal
	return sessionInfo{CSRFToken: ss.CSRF, Kind: p.Kind, Name: p.Name, Role: p.Role, SimulatedBackends: s.SimulatedBackends}
}

// session returns the request's browser session, if it has one.
func (s *Server) session(r *http.Request) (*provision.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "not logged in")
	}
	return s.svc.SessionFor(r.Context(), c.Value)
}

// checkCSRF guards cookie-authenticated changes: the page must echo its CSRF
// token, and a browser that names the request's origin must name ours.
func checkCSRF(r *http.Request, ss *provision.Session) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ss.CSRF)) != 1 {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "missing or wrong %s header", csrfHeader)
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "cross-origin request refused")
	}
	return nil
}

func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// secureRequest says whether the browser reached us over HTTPS, directly or
// through a proxy that says so.
func secureRequest(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}
