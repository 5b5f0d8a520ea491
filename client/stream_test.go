package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"testing"

	"gatehouse"
	"gatehouse/client"
)

// TestWatchChanges reads the server's event stream: comments and other
// events are skipped, each devices event is one Change, and the stream's
// end is an error.
func TestWatchChanges(t *testing.T) {
	release := make(chan struct{})
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/stream" || r.Header.Get("Authorization") != "Bearer "+testToken {
			t.Errorf("request %s with %q", r.URL.Path, r.Header.Get("Authorization"))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": connected\n\n")
		w.(http.Flusher).Flush()
		<-release // the client returns once connected, before any event
		fmt.Fprint(w, "event: devices\ndata: {\"ids\":[\"d1\",\"d2\"]}\n\n: ping\n\nevent: other\ndata: {}\n\n"+
			"event: devices\ndata: {\"ids\":[],\"all\":true}\n\n")
	})
	changes, err := c.WatchChanges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer changes.Close()
	close(release)
	want := []client.Change{{IDs: []string{"d1", "d2"}}, {IDs: []string{}, All: true}}
	for i, w := range want {
		got, err := changes.Next()
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Fatalf("change %d = %+v, %v; want %+v", i, got, err, w)
		}
	}
	if !want[0].Touches("d2") || want[0].Touches("d3") || !want[1].Touches("d3") {
		t.Error("Touches is wrong")
	}
	if _, err := changes.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the stream ended: %v, want EOF", err)
	}
}

func TestWatchChangesRefused(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": gatehouse.EUNAUTHORIZED, "message": "invalid API token"}})
	})
	if _, err := c.WatchChanges(context.Background()); gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
		t.Errorf("err = %v, want unauthorized", err)
	}
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{}) })
	if _, err := plain.WatchChanges(context.Background()); err == nil {
		t.Error("a JSON answer was taken for an event stream")
	}
}
