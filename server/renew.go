package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request, sig *protocol.Signed, body []byte) error {
	var req protocol.RenewRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	out, err := s.svc.Renew(r.Context(), sig, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleRenewAck(w http.ResponseWriter, r *http.Request, sig *protocol.Signed, body []byte) error {
	var req protocol.RenewAckRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if err := s.svc.RenewAck(r.Context(), sig, req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleDeviceCerts(w http.ResponseWriter, r *http.Request) error {
	certs, err := s.svc.Certificates(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"certificates": certs})
}

// defaultExpiringWithin is the fleet view's horizon when none is asked for.
const defaultExpiringWithin = 14 * 24 * time.Hour

func (s *Server) handleExpiringCerts(w http.ResponseWriter, r *http.Request) error {
	within := defaultExpiringWithin
	if v := r.URL.Query().Get("expiring_within"); v != "" {
		var err error
		if within, err = ParseWithin(v); err != nil {
			return err
		}
	}
	certs, err := s.svc.CertsExpiring(r.Context(), within)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"expiring_within": FormatWithin(within), "certificates": certs})
}

// maxWithin bounds the fleet view's horizon to something a person means.
const maxWithin = 10 * 365 * 24 * time.Hour

// ParseWithin reads a horizon such as "14d", "36h" or "90m": whole days
// with d, else a Go duration.
func ParseWithin(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d <= 0 || d > maxWithin {
		return 0, gatehouse.Errorf(gatehouse.EINVALID, "expiring_within %q: want a positive number of days such as 14d, or a duration such as 36h, at most 3650d", v)
	}
	return d, nil
}

// FormatWithin spells a horizon the way ParseWithin reads it.
func FormatWithin(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
