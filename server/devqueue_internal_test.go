package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/store"
)

// newQueueServer is a server on a fresh SQLite file, closed with the test.
func newQueueServer(t *testing.T) *Server {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := provision.New(db, provision.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return New(svc)
}

func TestDeviceQueueRefusesPastItsBound(t *testing.T) {
	s := newQueueServer(t)
	w := httptest.NewRecorder()
	leave, err := s.enterDeviceQueue(w)
	if err != nil {
		t.Fatalf("an empty queue refused: %v", err)
	}
	leave()
	s.devQueued.Store(maxDeviceQueue) // as if that many waited for a slot
	_, err = s.enterDeviceQueue(w)
	if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Fatalf("a full queue answered %v; want %s", err, gatehouse.EUNAVAILABLE)
	}
	if c := w.Header().Get("Connection"); c != "close" {
		t.Errorf("a refusal left Connection %q; want close", c)
	}
	// The turned-away pace: 10 s at least, less at most 10% jitter.
	if d := gatehouse.ErrorRetryAfter(err); d < 9*time.Second {
		t.Errorf("Retry-After %v; want the turned-away waiters' pace, 9 s or more", d)
	}
	if n := s.devQueued.Load(); n != maxDeviceQueue {
		t.Errorf("the refusal left the queue at %d; want %d", n, maxDeviceQueue)
	}
}

// A wait past the queue's bound is refused all the same; with every
// database slot taken, a wait is still answered (its nonce needs none:
// nonces share commits) while an enroll waits for a slot.
func TestWaitTakesNoDeviceSlot(t *testing.T) {
	ctx := context.Background()
	s := newQueueServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	post := func(ctx context.Context, path string, body any) (int, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader(b))
		if err := protocol.SignRequest(req, b, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	seal := make([]byte, 32)
	seal[0] = 9
	if code, err := post(ctx, protocol.PathEnroll, protocol.EnrollRequest{MAC: "02:00:00:00:00:01", SealKey: seal}); err != nil || code != http.StatusOK {
		t.Fatalf("enroll: %d %v", code, err)
	}

	s.devQueued.Store(maxDeviceQueue)
	if code, err := post(ctx, protocol.PathWait, protocol.WaitRequest{State: "approved"}); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("a wait past the queue's bound: %d %v; want 503", code, err)
	}
	s.devQueued.Store(0)

	for range deviceSlots {
		s.devSlots <- struct{}{}
	}
	if code, err := post(ctx, protocol.PathWait, protocol.WaitRequest{State: "approved"}); err != nil || code != http.StatusOK {
		t.Fatalf("a wait with every slot taken: %d %v; want 200", code, err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := post(short, protocol.PathEnroll, protocol.EnrollRequest{MAC: "02:00:00:00:00:01", SealKey: seal}); err == nil {
		t.Fatal("an enroll was answered with every slot taken; want it to wait for one")
	}
}
