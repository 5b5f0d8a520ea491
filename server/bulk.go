package server

import (
	"errors"
	"io"
	"net/http"

	"gatehouse"
	"gatehouse/provision"
)

// maxBulkBody fits MaxBulkItems items with names and labels; other routes
// keep MaxBodyBytes.
const maxBulkBody = 4 << 20

type bulkItemRequest struct {
	ID     string            `json:"id,omitempty"`
	MAC    string            `json:"mac,omitempty"`
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

type bulkRequest struct {
	Action  string            `json:"action"`
	Items   []bulkItemRequest `json:"items,omitempty"`
	IDs     []string          `json:"ids,omitempty"`
	Pattern string            `json:"pattern,omitempty"`
	Start   *int              `json:"start,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	DryRun  bool              `json:"dry_run,omitempty"`
}

func (r bulkRequest) service() provision.BulkRequest {
	out := provision.BulkRequest{Action: r.Action, IDs: r.IDs, Pattern: r.Pattern, Start: r.Start, Labels: r.Labels}
	for _, it := range r.Items {
		out.Items = append(out.Items, provision.BulkTarget{ID: it.ID, MAC: it.MAC, Name: it.Name, Labels: it.Labels})
	}
	return out
}

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
	var req bulkRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if req.DryRun {
		plan, err := s.svc.PlanBulk(r.Context(), req.service())
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, plan)
	}
	op, err := s.svc.StartBulk(r.Context(), actor(r.Context()), req.service())
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
