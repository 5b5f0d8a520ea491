package server

import (
	"net/http"

	"gatehouse/provision"
)

// editRequest is a PATCH of a gateway: fields left out stay as they are;
// labels replace the gateway's labels as a whole ({} removes them all).
type editRequest struct {
	Name   *string            `json:"name"`
	Labels *map[string]string `json:"labels"`
}

func (s *Server) handleEditDevice(w http.ResponseWriter, r *http.Request) error {
	var req editRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	d, err := s.svc.Update(r.Context(), actor(r.Context()), r.PathValue("id"), provision.Edit{Name: req.Name, Labels: req.Labels})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}
