package server

import (
	"net/http"
	"net/url"
	"strconv"

	"gatehouse"
	"gatehouse/provision"
)

// handleAudit pages through the audit log: newest first with before, or
// oldest first with after (for exports).
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var aq provision.AuditQuery
	var err error
	if aq.Limit, err = intParam(q.Get("limit")); err != nil {
		return err
	}
	if aq.Before, err = seqParam(q, "before"); err != nil {
		return err
	}
	if q.Has("after") {
		aq.Forward = true
		if aq.After, err = seqParam(q, "after"); err != nil {
			return err
		}
	}
	page, err := s.svc.AuditLog(r.Context(), aq)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func seqParam(q url.Values, key string) (int64, error) {
	v := q.Get(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, gatehouse.Errorf(gatehouse.EINVALID, "%s: %q is not a sequence number", key, v)
	}
	return n, nil
}
