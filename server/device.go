package server

import (
	"context"
	"net/http"
	"time"

	"gatehouse"

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
	s.grantSession(sig, st)
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleWait(w http.ResponseWriter, r *http.Request, sig *protocol.Signed, body []byte) error {
	var req protocol.WaitRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	ctx, stop := s.untilClosing(r.Context())
	defer stop()
	defer s.Metrics.LongPoll()()
	st, err := s.svc.Wait(ctx, sig, req.State, remoteAddr(r), s.LongPoll)
	if err != nil && s.isClosing() {
		// A held poll would keep shutdown waiting for its whole timeout;
		// the agent retries, and finds another replica or this one back.
		return gatehouse.Errorf(gatehouse.EUNAVAILABLE, "the server is shutting down; ask again").WithRetryAfter(time.Second)
	}
	if err != nil {
		return err
	}
	s.grantSession(sig, st)
	if st.PollAfter > 0 {
		// A gateway told to come back later should not keep an idle
		// connection (and a file descriptor here) open in between.
		w.Header().Set("Connection", "close")
	}
	return writeJSON(w, http.StatusOK, st)
}

// untilClosing is ctx, also cancelled when the server starts to close. It
// starts no goroutine: thousands of polls may be held at once.
func (s *Server) untilClosing(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

func (s *Server) isClosing() bool { return s.closing.Err() != nil }

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
