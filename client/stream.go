package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Change is one message of the server's live updates: the devices that
// changed, or All when too many did to name them. It carries no device
// data; the caller fetches what it shows.
type Change struct {
	IDs []string `json:"ids"`
	All bool     `json:"all,omitempty"`
}

// Touches says whether the change may concern device id.
func (ch Change) Touches(id string) bool {
	if ch.All {
		return true
	}
	for _, got := range ch.IDs {
		if got == id {
			return true
		}
	}
	return false
}

// Changes is an open stream of live updates (GET /api/v1/stream).
type Changes struct {
	body   io.ReadCloser
	lines  *bufio.Scanner
	cancel context.CancelFunc
}

// maxStreamLine bounds one line of the stream; a change naming a few
// thousand device ids is well under it.
const maxStreamLine = 1 << 20

// WatchChanges opens the server's stream of device changes. It returns once
// the server has answered, so whatever the caller fetches afterwards is no
// older than the first change it will hear of. The client's per-call
// timeout does not apply: the stream lasts until ctx ends or Close.
func (c *Client) WatchChanges(ctx context.Context) (*Changes, error) {
	const path = "/api/v1/stream"
	ctx, cancel := context.WithCancel(ctx)
	req, err := c.newRequest(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, c.transportError(ctx, http.MethodGet, path, err)
	}
	if resp.StatusCode >= 400 {
		defer cancel()
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		return nil, apiError(http.MethodGet, path, resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %s answered %q, not an event stream (is it a gatehouse server?)", path, c.base, ct)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 0, 4096), maxStreamLine)
	return &Changes{body: resp.Body, lines: lines, cancel: cancel}, nil
}

// Next waits for the next change. It returns an error when the stream
// ends: ctx ended, Close was called, or the server went away (it ends
// streams when it shuts down or the token is revoked).
func (s *Changes) Next() (Change, error) {
	var event string
	var data []string
	for s.lines.Scan() {
		line := s.lines.Text()
		switch {
		case line == "":
			// A blank line ends a message; comments (pings) leave none.
			if event == "devices" && len(data) > 0 {
				var ch Change
				if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &ch); err != nil {
					return Change{}, fmt.Errorf("live updates: undecodable message: %w", err)
				}
				return ch, nil
			}
			event, data = "", nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := s.lines.Err(); err != nil {
		return Change{}, fmt.Errorf("live updates: %w", err)
	}
	return Change{}, fmt.Errorf("live updates: %w", io.EOF)
}

// Close ends the stream.
func (s *Changes) Close() error {
	s.cancel()
	return s.body.Close()
}
