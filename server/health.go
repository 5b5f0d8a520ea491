package server

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"time"

	"gatehouse"
	"gatehouse/store"
)

//go:embed openapi.json
var openapiDoc []byte

// readyTimeout bounds the readiness check's database work: a probe must
// answer within its own timeout (set it to 3 s or more), and a
// database that takes longer is as good as unreachable to callers.
const readyTimeout = 2 * time.Second

// Why /readyz says not ready, in its "reason" field.
const (
	notReadyDatabase = "database unreachable"
	notReadySchema   = "schema behind"
	// notReadyUnwritable: a write failed because the disk is full or the
	// database read-only. Reads still work; the replica leaves rotation so
	// writes go where they can land, and comes back once a probe write
	// goes through.
	notReadyUnwritable = "database unwritable"
)

// notReady is /readyz's 503 answer: the usual error body, and a reason
// a probe's log or a person can read at a glance.
type notReady struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
	errorBody
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady says whether this replica should get traffic: its database
// answers in time, holds every migration this binary knows and takes
// writes, so a replica started before its migrations finish (or against a
// database another version migrates), or whose disk is full, stays out of
// rotation until then.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	err := s.svc.Ready(ctx)
	if err == nil {
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
	s.Logger.WarnContext(r.Context(), "not ready", "err", err)
	body := notReady{Status: "not ready", Reason: notReadyDatabase}
	body.Error.Code, body.Error.Message = gatehouse.EUNAVAILABLE, "the database does not answer"
	switch {
	case errors.Is(err, store.ErrSchemaBehind):
		body.Reason, body.Error.Message = notReadySchema, "the database schema is behind this gatehouse: migrations are running or pending"
	case errors.Is(err, store.ErrUnwritable):
		body.Reason, body.Error.Message = notReadyUnwritable, "the database cannot be written (disk full or read-only): writes are refused, reads still work"
	}
	w.Header().Set("Retry-After", "1")
	return writeJSON(w, http.StatusServiceUnavailable, body)
}

// handleMetrics serves the Prometheus metrics. It is public, as /healthz
// is, because that is where a Prometheus ServiceMonitor scrapes; the series
// hold counts and timings, never names, ids or addresses.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.Metrics == nil {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "metrics are not enabled on this server")
	}
	s.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openapiDoc)
	return err
}
