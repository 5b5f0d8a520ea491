package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"gatehouse"
)

// statusOf is the one place application error codes become HTTP statuses.
var statusOf = map[string]int{
	gatehouse.ECONFLICT:     http.StatusConflict,
	gatehouse.EINTERNAL:     http.StatusInternalServerError,
	gatehouse.EINVALID:      http.StatusBadRequest,
	gatehouse.ENOTFOUND:     http.StatusNotFound,
	gatehouse.EUNAUTHORIZED: http.StatusUnauthorized,
	gatehouse.EFORBIDDEN:    http.StatusForbidden,
	gatehouse.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	gatehouse.EUNAVAILABLE:  http.StatusServiceUnavailable,
	gatehouse.ERATELIMITED:  http.StatusTooManyRequests,
	gatehouse.EGONE:         http.StatusGone,
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// Conflict names the gateway that holds what was asked for, when
		// the error is about one (a name taken).
		Conflict *gatehouse.Conflict `json:"conflict,omitempty"`
	} `json:"error"`
}

// handlerFunc is an HTTP handler that returns its error for writeError.
type handlerFunc func(http.ResponseWriter, *http.Request) error

func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeError renders err as {"error":{"code","message","conflict"?}}. Only *gatehouse.Error
// messages reach the client; anything else is logged and reported generically.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := gatehouse.ErrorCode(err)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nobody to answer
	}
	if code == gatehouse.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if info, ok := r.Context().Value(infoKey).(*reqInfo); ok && (code == gatehouse.EUNAUTHORIZED || code == gatehouse.EFORBIDDEN) {
		info.refusal = err
	}
	var body errorBody
	body.Error.Code, body.Error.Message = code, gatehouse.ErrorMessage(err)
	body.Error.Conflict = gatehouse.ErrorConflict(err)
	if code == gatehouse.EUNAUTHORIZED && !isDevicePath(r.URL.Path) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	if d := gatehouse.ErrorRetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(d))
	}
	writeJSON(w, statusOf[code], body)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// retryAfterSeconds renders d as Retry-After's whole seconds, rounded up so
// a client that waits exactly that long finds the server ready.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(max((d+time.Second-1)/time.Second, 1)), 10)
}
