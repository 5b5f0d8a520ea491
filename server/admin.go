package server

import (
	"net/http"
	"time"

	"gatehouse"
	"gatehouse/provision"
)

type tokenRequest struct {
	Name string         `json:"name"`
	Role gatehouse.Role `json:"role"`
	// ExpiresAt defaults to provision.DefaultTokenLife from now; a token
	// that never expires must say so with NeverExpires.
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	NeverExpires bool       `json:"never_expires,omitempty"`
}

type createdToken struct {
	Token  *gatehouse.Token `json:"token"`
	Secret string           `json:"secret"`
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.svc.Tokens(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tokens": nonNil(ts)})
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	spec, err := req.spec(time.Now())
	if err != nil {
		return err
	}
	secret, t, err := s.svc.CreateToken(r.Context(), spec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, createdToken{Token: t, Secret: secret})
}

func (req tokenRequest) spec(now time.Time) (provision.TokenSpec, error) {
	spec := provision.TokenSpec{Name: req.Name, Role: req.Role, Expires: req.ExpiresAt}
	switch {
	case req.NeverExpires && req.ExpiresAt != nil:
		return spec, gatehouse.Errorf(gatehouse.EINVALID, "give expires_at or never_expires, not both")
	case req.ExpiresAt == nil && !req.NeverExpires:
		at := now.Add(provision.DefaultTokenLife)
		spec.Expires = &at
	}
	return spec, nil
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.RevokeToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

type userRequest struct {
	Name     string         `json:"name"`
	Role     gatehouse.Role `json:"role"`
	Password string         `json:"password"`
}

type userPatch struct {
	Role     *gatehouse.Role `json:"role,omitempty"`
	Password *string         `json:"password,omitempty"`
	Disabled *bool           `json:"disabled,omitempty"`
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := s.svc.Users(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"users": nonNil(us)})
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var req userRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.svc.CreateUser(r.Context(), provision.UserSpec{Name: req.Name, Role: req.Role, Password: req.Password})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, u)
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	var req userPatch
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.svc.UpdateUser(r.Context(), r.PathValue("name"),
		provision.UserChange{Role: req.Role, Password: req.Password, Disabled: req.Disabled})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteUser(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readJSON reads a bounded body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
