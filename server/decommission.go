package server

import (
	"net/http"
	"strconv"

	"gatehouse"
)

// handleDecommission removes a gateway from every backend, or with
// ?dry_run=true lists what it would remove and changes nothing.
func (s *Server) handleDecommission(w http.ResponseWriter, r *http.Request) error {
	dryRun := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		var err error
		if dryRun, err = strconv.ParseBool(v); err != nil {
			return gatehouse.Errorf(gatehouse.EINVALID, "dry_run must be true or false, not %q", v)
		}
	}
	dec, err := s.svc.Decommission(r.Context(), actor(r.Context()), r.PathValue("id"), dryRun)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, dec)
}

// handleForget forgets a dismissed or fully decommissioned gateway.
func (s *Server) handleForget(w http.ResponseWriter, r *http.Request) error {
	f, err := s.svc.Forget(r.Context(), actor(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f)
}
