package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
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

// TestCloseCutsOffRequestsPastItsDeadline: a request still in flight when
// Close's deadline passes (here a body that never arrives) does not keep
// its connection open into a shutdown about to close the database: Close
// says it ran out of time, and the connection is closed.
func TestCloseCutsOffRequestsPastItsDeadline(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(tb.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The headers promise a body that never comes. Asking for 100-continue
	// tells us when the handler has started reading it: from then on the
	// request is in flight, not a connection waiting to be accepted.
	const head = "POST " + protocol.PathEnroll + " HTTP/1.1\r\nHost: gatehouse\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("before the body: %q, %v; want 100 Continue", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := tb.srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a request stuck in flight: %v; want its deadline exceeded", err)
	}
	const bound = 20 * time.Second
	conn.SetReadDeadline(time.Now().Add(bound))
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the stuck request's connection was still open %v after Close returned", bound)
	}
}
