package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"gatehouse"
)

// streamCoalesce gathers changes for a moment before telling the page, so a
// burst of step updates becomes one refresh, still well within a second.
const streamCoalesce = 250 * time.Millisecond

// streamPing keeps proxies from closing an idle stream.
const streamPing = 25 * time.Second

type streamEvent struct {
	IDs []string `json:"ids"`
	All bool     `json:"all,omitempty"`
}

// handleStream sends server-sent events naming the devices that changed.
// The page refetches what it shows; the stream carries no device data, so
// it needs no filtering by what the caller may see.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	watcher, stop := s.svc.Notifier().WatchAll()
	defer stop()
	if err := s.send(rc, w, ": connected\n\n"); err != nil {
		return nil
	}
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	recheck := time.NewTicker(s.streamRecheck())
	defer recheck.Stop()
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return nil
		case <-s.closing.Done():
			return nil
		case <-ping.C:
			msg = ": ping\n\n"
		case <-recheck.C:
			// A revoked token, disabled user or lowered role ends the
			// stream; the page's reconnect then meets the refusal.
			if _, _, err := s.callerWith(r, gatehouse.RoleViewer); err != nil {
				return nil
			}
			continue
		case <-watcher.Wake():
			time.Sleep(streamCoalesce)
			ids, all := watcher.Take()
			data, _ := json.Marshal(streamEvent{IDs: ids, All: all})
			msg = fmt.Sprintf("event: devices\ndata: %s\n\n", data)
		}
		if err := s.send(rc, w, msg); err != nil {
			return nil // the browser went away; EventSource reconnects on its own
		}
	}
}

func (s *Server) streamRecheck() time.Duration {
	if s.StreamRecheck > 0 {
		return s.StreamRecheck
	}
	return streamPing
}

// send writes and flushes one message, moving the write deadline on so the
// server's WriteTimeout does not cut a healthy stream.
func (s *Server) send(rc *http.ResponseController, w http.ResponseWriter, msg string) error {
	rc.SetWriteDeadline(time.Now().Add(streamPing + 10*time.Second))
	if _, err := fmt.Fprint(w, msg); err != nil {
		return err
	}
	return rc.Flush()
}
