package server

import (
	"net/http"
	"strconv"

	"gatehouse"
	"gatehouse/provision"
)

func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := provision.ListFilter{State: gatehouse.State(q.Get("state")), Search: q.Get("q"), Seen: q.Get("seen")}
	var err error
	if f.Limit, err = intParam(q.Get("limit")); err != nil {
		return err
	}
	if f.Offset, err = intParam(q.Get("offset")); err != nil {
		return err
	}
	list, err := s.svc.ListDevices(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, list)
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
	if evs == nil {
		evs = []gatehouse.Event{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

type approveRequest struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var req approveRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	d, err := s.svc.Approve(r.Context(), actor(r.Context()), r.PathValue("id"), provision.Approval{Name: req.Name, Labels: req.Labels})
	if err != nil {
		return err
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
