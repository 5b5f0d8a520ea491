package server

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/roster"
)

// MaxAllowlistBytes bounds an allowlist file: MaxAllowlistRows rows of MAC,
// name and a few labels fit with room to spare.
const MaxAllowlistBytes = 1 << 20

// importResponse is the answer to an import: what was (or would be)
// imported, and the bad rows. A refused file carries the error too, so
// clients that only read errors still see why.
type importResponse struct {
	*provision.ImportResult
	Errors []roster.RowError `json:"errors"`
	Error  *errorMessage     `json:"error,omitempty"`
}

type errorMessage struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *Server) handleImportAllowlist(w http.ResponseWriter, r *http.Request) error {
	if err := csvBody(r); err != nil {
		return err
	}
	opt, err := importOptions(r)
	if err != nil {
		return err
	}
	// Every row's name is asked of every backend at the pace of its quota,
	// which may take longer than the server's usual write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(provision.AllowlistCheckBudget + time.Minute))
	body := http.MaxBytesReader(w, r.Body, MaxAllowlistBytes)
	res, err := s.svc.ImportAllowlist(r.Context(), actor(r.Context()), body, opt)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return gatehouse.Errorf(gatehouse.ETOOLARGE, "the file exceeds %d bytes; split it", MaxAllowlistBytes)
	}
	var rows *provision.InvalidRowsError
	if errors.As(err, &rows) {
		// 422: the file is well-formed but some rows cannot be listed.
		msg := &errorMessage{Code: gatehouse.ErrorCode(err), Message: gatehouse.ErrorMessage(err)}
		return writeJSON(w, http.StatusUnprocessableEntity, newImportResponse(rows.Result, msg))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newImportResponse(res, nil))
}

func newImportResponse(res *provision.ImportResult, refusal *errorMessage) importResponse {
	res.Imported = nonNil(res.Imported)
	return importResponse{ImportResult: res, Errors: nonNil(res.Errors), Error: refusal}
}

// csvBody refuses a body that is not declared CSV (or plain text, as some
// tools send it): a JSON body here is a mistake worth naming.
func csvBody(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "text/plain") {
		return gatehouse.Errorf(gatehouse.EINVALID, "send the allowlist as a CSV file with Content-Type text/csv")
	}
	return nil
}

func importOptions(r *http.Request) (provision.ImportOptions, error) {
	var opt provision.ImportOptions
	q := r.URL.Query()
	for name, p := range map[string]*bool{"skip_invalid": &opt.SkipInvalid, "dry_run": &opt.DryRun} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return opt, gatehouse.Errorf(gatehouse.EINVALID, "%s must be true or false, not %q", name, v)
			}
			*p = b
		}
	}
	return opt, nil
}

func (s *Server) handleListAllowlist(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"))
	if err != nil {
		return err
	}
	offset, err := intParam(q.Get("offset"))
	if err != nil {
		return err
	}
	page, err := s.svc.Allowlist(r.Context(), offset, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) handleRemoveAllowlist(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.RemoveAllowlistEntry(r.Context(), actor(r.Context()), r.PathValue("mac")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
