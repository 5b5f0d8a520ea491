package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"gatehouse/protocol"
	"gatehouse/provision"
)

// TestCloseAnswersHeldLongPolls: a long poll held for its full 30 s would
// keep a shutdown waiting as long; closing the server answers it at once
// with a 503 and Retry-After, which the agent retries, and Close returns.
func TestCloseAnswersHeldLongPolls(t *testing.T) {
	t.Parallel()
	n := &heldNotifier{Notifier: provision.NewLocalNotifier(), held: make(chan string, 1)}
	tb := setupWith(t, setupOpts{notifier: n, longPoll: 30 * time.Second})
	d := newDevice(t)
	tb.enroll(t, d)
	type answer struct {
		code       int
		retryAfter string
		err        error
	}
	done := make(chan answer, 1)
	req := d.request(t, tb.url, protocol.PathWait, []byte(`{"state":"pending"}`))
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		resp.Body.Close()
		done <- answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	}()
	select {
	case <-n.held:
	case a := <-done:
		t.Fatalf("the long poll answered before it was held: %+v", a)
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll was not held within 20 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := tb.srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v (after %v); a held poll must not hold up shutdown", err, time.Since(start))
	}
	took := time.Since(start)
	a := <-done
	if a.err != nil || a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Fatalf("held poll answered %+v; want 503 with Retry-After", a)
	}
	t.Logf("Close returned after %v with a poll held", took.Round(time.Millisecond))
}
