package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"gatehouse"
)

// TestAfterApproveCommitHook proves the crash test's hook sits where it
// claims: it runs once the approval is in the database and before the
// caller has an answer, and not for an approval that was refused.
func TestAfterApproveCommitHook(t *testing.T) {
	t.Parallel()
	inHook, release := make(chan string, 1), make(chan struct{})
	var calls atomic.Int32
	tb := setupWith(t, setupOpts{afterApprove: func(id string) {
		calls.Add(1)
		inHook <- id
		<-release
	}})
	id := tb.enroll(t, newDevice(t)).DeviceID

	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": "Bad Name"}, nil); code != 400 {
		t.Fatalf("approve with a bad name: %d, want 400", code)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the hook ran %d times for a refused approval", n)
	}

	// Sent by hand, not with tb.call, which may end the test from this
	// goroutine; a transport error answers -1.
	answered := make(chan int, 1)
	req, _ := http.NewRequest("POST", tb.url+"/api/v1/devices/"+id+"/approve", strings.NewReader(`{"name":"gw-hook"}`))
	req.Header.Set("Authorization", "Bearer "+tb.admin)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	if got := <-inHook; got != id {
		t.Fatalf("hook called for %q, want %q", got, id)
	}
	select {
	case code := <-answered:
		t.Fatalf("the approval was answered (%d) while the hook ran", code)
	default:
	}
	d, err := tb.svc.Device(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.State == gatehouse.StatePending || d.Name != "gw-hook" {
		t.Errorf("in the hook the device is %s named %q: the approval has not committed", d.State, d.Name)
	}
	close(release)
	if code := <-answered; code != 200 {
		t.Fatalf("approve: %d, want 200 once the hook returned", code)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("hook ran %d times, want 1", n)
	}
}
