package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/store"
)

// stack is one gatehouse process: database, service and HTTP server.
type stack struct {
	url  string
	stop func()
}

// startStack runs a gatehouse on the database file at path, with no backends:
// enrollment needs none.
func startStack(t *testing.T, path string) *stack {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := provision.New(db, provision.Config{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := server.New(svc)
	srv.Addr = "127.0.0.1:0"
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		svc.Stop(ctx)
		db.Close()
	}
	t.Cleanup(stop)
	return &stack{url: srv.URL(), stop: stop}
}

// captured is a signed request as an eavesdropper keeps it.
type captured struct {
	path string
	hdr  http.Header
	body []byte
}

func capture(t *testing.T, d *device, path string, body []byte) captured {
	t.Helper()
	req := d.request(t, "http://captured.invalid", path, body)
	return captured{path: path, hdr: req.Header.Clone(), body: body}
}

// sendTo sends the captured request, byte for byte, to the server at url.
func (c captured) sendTo(t *testing.T, url string) (int, apiError) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.hdr.Clone()
	var e apiError
	return do(t, req, &e), e
}

func wantReplayRefused(t *testing.T, code int, e apiError) {
	t.Helper()
	if code != http.StatusUnauthorized || e.Error.Code != gatehouse.EUNAUTHORIZED || !strings.Contains(e.Error.Message, "nonce") {
		t.Fatalf("replay: %d %+v, want 401 about the nonce", code, e)
	}
}

func TestReplayRefusedAfterRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	d := newDevice(t)
	req := capture(t, d, protocol.PathEnroll, d.enrollBody(t, d.mac))

	first := startStack(t, path)
	if code, e := req.sendTo(t, first.url); code != http.StatusOK {
		t.Fatalf("first request: %d %+v", code, e)
	}
	first.stop()

	again := startStack(t, path)
	code, e := req.sendTo(t, again.url)
	wantReplayRefused(t, code, e)
	// The restarted server still serves the device: only the replay fails.
	fresh := capture(t, d, protocol.PathEnroll, d.enrollBody(t, d.mac))
	if code, e := fresh.sendTo(t, again.url); code != http.StatusOK {
		t.Fatalf("fresh request after restart: %d %+v", code, e)
	}
}

func TestReplayRefusedByAnotherProcess(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a, b := startStack(t, path), startStack(t, path)
	d := newDevice(t)
	req := capture(t, d, protocol.PathEnroll, d.enrollBody(t, d.mac))
	if code, e := req.sendTo(t, a.url); code != http.StatusOK {
		t.Fatalf("request to a: %d %+v", code, e)
	}
	code, e := req.sendTo(t, b.url)
	wantReplayRefused(t, code, e)
}

// forgeableRequest enrolls with the identity point as Ed25519 key: R =
// identity, S = 0 "signs" every message for it.
func forgeableRequest(t *testing.T, url string, body []byte) *http.Request {
	t.Helper()
	identity := make(ed25519.PublicKey, 32)
	identity[0] = 1
	spki, err := x509.MarshalPKIXPublicKey(identity)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+protocol.PathEnroll, bytes.NewReader(body))
	req.Header.Set(protocol.HeaderKey, base64.StdEncoding.EncodeToString(spki))
	req.Header.Set(protocol.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set(protocol.HeaderNonce, strings.Repeat("0f", 16))
	req.Header.Set(protocol.HeaderSignature, base64.StdEncoding.EncodeToString(append(identity, make([]byte, 32)...)))
	return req
}

func TestDegenerateKeysRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	lowOrder, _ := json.Marshal(protocol.EnrollRequest{MAC: d.mac, SealKey: make([]byte, 32)})
	cases := []struct {
		name, want string
		req        *http.Request
	}{
		{"small-order Ed25519 key", "small-order", forgeableRequest(t, tb.url, d.enrollBody(t, d.mac))},
		{"low-order seal key", "low-order", d.request(t, tb.url, protocol.PathEnroll, lowOrder)},
	}
	for _, tc := range cases {
		var e apiError
		code := do(t, tc.req, &e)
		if code != http.StatusBadRequest || e.Error.Code != gatehouse.EINVALID || !strings.Contains(e.Error.Message, tc.want) {
			t.Errorf("%s: %d %+v, want 400 mentioning %q", tc.name, code, e, tc.want)
		}
	}
	if n := tb.count(t); n != 0 {
		t.Fatalf("refused enrollments stored %d devices", n)
	}
}

// A key-signed wait answers from reads on connections of their own and
// takes no database slot, but its nonce is committed before it is
// answered all the same: replayed after a restart, or to another process
// on the same database, it is refused.
func TestWaitReplayRefusedAfterRestartAndElsewhere(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	d := newDevice(t)
	first := startStack(t, path)
	if code, e := capture(t, d, protocol.PathEnroll, d.enrollBody(t, d.mac)).sendTo(t, first.url); code != http.StatusOK {
		t.Fatalf("enroll: %d %+v", code, e)
	}
	wait, _ := json.Marshal(protocol.WaitRequest{State: "approved"}) // differs: answered at once
	req := capture(t, d, protocol.PathWait, wait)
	if code, e := req.sendTo(t, first.url); code != http.StatusOK {
		t.Fatalf("wait: %d %+v", code, e)
	}
	code, e := req.sendTo(t, first.url)
	wantReplayRefused(t, code, e)

	other := startStack(t, path)
	code, e = req.sendTo(t, other.url)
	wantReplayRefused(t, code, e)
	first.stop()
	other.stop()

	again := startStack(t, path)
	code, e = req.sendTo(t, again.url)
	wantReplayRefused(t, code, e)
	if code, e := capture(t, d, protocol.PathWait, wait).sendTo(t, again.url); code != http.StatusOK {
		t.Fatalf("fresh wait after restart: %d %+v", code, e)
	}
}
