package server

import (
	"net/http"

	"gatehouse/protocol"
)

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request, sig *protocol.Signed, body []byte) error {
	var req protocol.EnrollRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	st, err := s.svc.Enroll(r.Context(), sig, req, remoteAddr(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleWait(w http.ResponseWriter, r *http.Request, sig *protocol.Signed, body []byte) error {
	var req protocol.WaitRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	st, err := s.svc.Wait(r.Context(), sig, req.State, remoteAddr(r), s.LongPoll)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request, sig *protocol.Signed, body []byte) error {
	var req protocol.AckRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if err := s.svc.Ack(r.Context(), sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
