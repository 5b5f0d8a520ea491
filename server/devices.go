package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"gatehouse"
	"gatehouse/provision"
)

// maxOffset bounds paging: SQLite walks every skipped row, so one huge
// offset costs a scan of the whole table, and a handful of them at once
// held the one database connection long enough to stall enrollment. It is
// above any fleet size gatehouse is meant for.
const maxOffset = 1_000_000

// listBudget is how long one listing may use the database.
const listBudget = 5 * time.Second

// handleListDevices answers a page of devices as JSON, or with
// format=csv every device the filter matches as a CSV download.
func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := provision.ListFilter{State: gatehouse.State(q.Get("state")), Search: q.Get("q"), Seen: q.Get("seen"),
		Sort: q.Get("sort")}
	var err error
	if f.Counts, err = boolParam("counts", q.Get("counts")); err != nil {
		return err
	}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		return s.exportCSV(w, r, f)
	default:
		return gatehouse.Errorf(gatehouse.EINVALID, "format must be json or csv, not %q", q.Get("format"))
	}
	if f.Limit, err = intParam(q.Get("limit")); err != nil {
		return err
	}
	if f.Offset, err = intParam(q.Get("offset")); err != nil {
		return err
	}
	if f.Offset > maxOffset {
		return gatehouse.Errorf(gatehouse.EINVALID, "offset must be at most %d; narrow the list with state, seen or q instead", maxOffset)
	}
	ctx, cancel := context.WithTimeout(r.Context(), listBudget)
	defer cancel()
	list, err := s.svc.ListDevices(ctx, f)
	if err != nil && ctx.Err() == context.DeadlineExceeded && r.Context().Err() == nil {
		return gatehouse.Errorf(gatehouse.EUNAVAILABLE, "listing devices took longer than %v; narrow the filter or try again", listBudget)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
}

func boolParam(name, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, gatehouse.Errorf(gatehouse.EINVALID, "%s must be true or false, not %q", name, v)
	}
	return b, nil
}

func intParam(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, gatehouse.Errorf(gatehouse.EINVALID, "%q is not a number", v)
	}
	return n, nil
}

func (s *Server) handleGetDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.svc.Device(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleDeviceEvents(w http.ResponseWriter, r *http.Request) error {
	evs, err := s.svc.Events(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(evs)})
}

type approveRequest struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) error {
	var req approveRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	d, err := s.svc.Approve(r.Context(), actor(r.Context()), r.PathValue("id"), provision.Approval{Name: req.Name, Labels: req.Labels})
	if err != nil {
		return err
	}
	if s.AfterApproveCommit != nil {
		s.AfterApproveCommit(d.ID)
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleDismiss(w http.ResponseWriter, r *http.Request) error {
	d, err := s.svc.Dismiss(r.Context(), actor(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) error {
	d, err := s.svc.Retry(r.Context(), actor(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleRestore(w http.ResponseWriter, r *http.Request) error {
	d, err := s.svc.Restore(r.Context(), actor(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}
