package server

import (
	"errors"
	"io"
	"net/http"

	"gatehouse"
)

// maxBulkBody fits MaxBulkItems items with names and labels; other routes
// keep MaxBodyBytes.
const maxBulkBody = 4 << 20

// handleStartBulk starts a bulk approval or dismissal, or with dry_run
// answers what it would do, each item with its name and any problem.
func (s *Server) handleStartBulk(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBulkBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return gatehouse.Errorf(gatehouse.ETOOLARGE, "request body exceeds %d bytes; split the operation", maxBulkBody)
	}
	if err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "could not read request body")
	}
	var req gatehouse.BulkRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if req.DryRun {
		plan, err := s.svc.PlanBulk(r.Context(), req)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, plan)
	}
	op, err := s.svc.StartBulk(r.Context(), actor(r.Context()), req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/bulk/"+op.ID)
	return writeJSON(w, http.StatusAccepted, op)
}

// handleGetBulk reports a bulk operation's progress and each item's result.
func (s *Server) handleGetBulk(w http.ResponseWriter, r *http.Request) error {
	op, err := s.svc.Bulk(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	op.Items = nonNil(op.Items)
	return writeJSON(w, http.StatusOK, op)
}
