package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/mender"
	"gatehouse/metrics"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/simulate"
	"gatehouse/store"
	"gatehouse/vault"
)

type testBundle struct {
	srv   *server.Server
	db    *store.DB
	url   string
	svc   *provision.Service
	admin string
	view  string
}

// setupOpts are what a test may change in its setup; zero fields keep the
// defaults.
type setupOpts struct {
	notifier provision.Notifier  // default a LocalNotifier
	longPoll time.Duration       // how long a device wait is held; default 2 s
	tls      *server.Certificate // serve HTTPS with it; default plain HTTP
	logger   *slog.Logger        // default discards
	recheck  time.Duration       // how often a stream re-checks its caller; default the server's

	deviceRate  rate.Limit // the device API's per-source limit; default the server's
	deviceBurst int
	pendingCap  int        // default provision's
	loginRate   rate.Limit // the login limit; default off
	loginBurst  int

	pollInterval time.Duration // how often job workers poll; default 10 ms
	simulated    bool          // the server says its backends are simulated

	afterApprove func(deviceID string) // Server.AfterApproveCommit; default none
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return setupWith(t, setupOpts{})
}

func setupWith(t *testing.T, o setupOpts) *testBundle {
	t.Helper()
	if o.longPoll == 0 {
		o.longPoll = 2 * time.Second
	}
	if o.pollInterval == 0 {
		o.pollInterval = 10 * time.Millisecond
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pki, _ := simulate.NewPKI()
	pki.SetRole(simulate.RecommendedVaultRole())
	m := metrics.New(db, nil)
	svc, err := provision.New(db, provision.Config{
		Metrics: m,
		Logger:  o.logger,
		Backends: []gatehouse.Backend{mender.NewBackend(simulate.NewMender()), azure.NewDPSBackend(simulate.NewDPS("")),
			vault.NewBackend(pki, false, "gateway")},
		PollInterval: o.pollInterval,
		Notifier:     o.notifier,
		PendingCap:   o.pendingCap,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := server.New(svc)
	srv.Addr, srv.LongPoll = "127.0.0.1:0", o.longPoll
	srv.TLS, srv.Logger, srv.StreamRecheck, srv.Metrics = o.tls, o.logger, o.recheck, m
	srv.SimulatedBackends = o.simulated
	srv.AfterApproveCommit = o.afterApprove
	if o.deviceRate != 0 {
		srv.DeviceRate, srv.DeviceBurst = o.deviceRate, o.deviceBurst
	}
	// Tests log in from one address more often than a person would; the
	// login limit's own test sets it.
	srv.LoginRate = rate.Inf
	if o.loginRate != 0 {
		srv.LoginRate, srv.LoginBurst = o.loginRate, o.loginBurst
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		svc.Stop(ctx)
	})
	tb := &testBundle{srv: srv, db: db, url: srv.URL(), svc: svc}
	tb.admin, _, _ = svc.CreateToken(ctx, provision.TokenSpec{Name: "admin", Role: gatehouse.RoleAdmin})
	tb.view, _, _ = svc.CreateToken(ctx, provision.TokenSpec{Name: "viewer", Role: gatehouse.RoleViewer})
	return tb
}

// call sends an operator request and decodes the JSON answer into out.
func (tb *testBundle) call(t *testing.T, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, tb.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req, out)
}

func do(t *testing.T, req *http.Request, out any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 && !strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: error without JSON: %d %s", req.Method, req.URL.Path, resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error struct{ Code, Message string } `json:"error"`
}

// device is a gateway speaking the signed protocol.
type device struct {
	key crypto.Signer
	mac string
}

func newDevice(t *testing.T) *device {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return &device{key: k, mac: "02:00:00:00:00:01"}
}

func (d *device) request(t *testing.T, url, path string, body []byte) *http.Request {
	t.Helper()
	req, _ := http.NewRequest("POST", url+path, bytes.NewReader(body))
	if err := protocol.SignRequest(req, body, d.key, time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

func (d *device) enrollBody(t *testing.T, mac string) []byte {
	sk, err := protocol.DeriveSealKey(d.key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(protocol.EnrollRequest{MAC: mac, SealKey: sk.PublicKey().Bytes()})
	return b
}

func (tb *testBundle) enroll(t *testing.T, d *device) protocol.Status {
	t.Helper()
	var st protocol.Status
	if code := do(t, d.request(t, tb.url, protocol.PathEnroll, d.enrollBody(t, d.mac)), &st); code != 200 {
		t.Fatalf("enroll: %d", code)
	}
	return st
}

func (tb *testBundle) count(t *testing.T) int {
	t.Helper()
	l, err := tb.svc.ListDevices(context.Background(), provision.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Total
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for _, p := range []string{"/healthz", "/readyz", "/api/openapi.json"} {
		if code := tb.call(t, "", "GET", p, nil, nil); code != 200 {
			t.Errorf("GET %s = %d", p, code)
		}
	}
}

func TestOperatorAuth(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cases := []struct {
		name, token, method, path string
		want                      int
		code                      string
	}{
		{"missing token", "", "GET", "/api/v1/devices", 401, gatehouse.EUNAUTHORIZED},
		{"wrong token", "gat_nottherealtoken", "GET", "/api/v1/devices", 401, gatehouse.EUNAUTHORIZED},
		{"not a token", "hello", "GET", "/api/v1/devices", 401, gatehouse.EUNAUTHORIZED},
		{"viewer approves", tb.view, "POST", "/api/v1/devices/x/approve", 403, gatehouse.EFORBIDDEN},
		{"viewer dismisses", tb.view, "POST", "/api/v1/devices/x/dismiss", 403, gatehouse.EFORBIDDEN},
		{"viewer lists", tb.view, "GET", "/api/v1/devices", 200, ""},
		{"unknown route", tb.admin, "GET", "/api/v1/nothing", 404, gatehouse.ENOTFOUND},
	}
	for _, tc := range cases {
		var e apiError
		got := tb.call(t, tc.token, tc.method, tc.path, map[string]string{"name": "gw-1"}, &e)
		if got != tc.want || e.Error.Code != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, got, e.Error.Code, tc.want, tc.code)
		}
	}
}

func TestDeviceRequestsRejected(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	good := d.enrollBody(t, d.mac)
	cases := []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest("POST", tb.url+protocol.PathEnroll, bytes.NewReader(good))
			return r
		}, 401},
		{"bad signature", func() *http.Request {
			r := d.request(t, tb.url, protocol.PathEnroll, good)
			r.Header.Set(protocol.HeaderSignature, base64.StdEncoding.EncodeToString(make([]byte, 64)))
			return r
		}, 401},
		{"body changed after signing", func() *http.Request {
			r := d.request(t, tb.url, protocol.PathEnroll, good)
			tampered := bytes.Replace(good, []byte("02:00"), []byte("02:01"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
			return r
		}, 401},
		{"stale timestamp", func() *http.Request {
			r, _ := http.NewRequest("POST", tb.url+protocol.PathEnroll, bytes.NewReader(good))
			protocol.SignRequest(r, good, d.key, time.Now().Add(-6*time.Minute))
			return r
		}, 401},
		{"malformed key", func() *http.Request {
			r := d.request(t, tb.url, protocol.PathEnroll, good)
			r.Header.Set(protocol.HeaderKey, base64.StdEncoding.EncodeToString([]byte("not a key")))
			return r
		}, 400},
		{"unsupported key", func() *http.Request {
			return signedByWeakRSA(t, tb.url+protocol.PathEnroll, good)
		}, 400},
		{"invalid MAC", func() *http.Request { return d.request(t, tb.url, protocol.PathEnroll, d.enrollBody(t, "zz:zz")) }, 400},
		{"unknown field", func() *http.Request {
			return d.request(t, tb.url, protocol.PathEnroll, []byte(`{"mac":"02:00:00:00:00:01","evil":1}`))
		}, 400},
		{"body over 64 KiB", func() *http.Request {
			big := append([]byte(`{"mac":"`), bytes.Repeat([]byte("a"), 70<<10)...)
			return d.request(t, tb.url, protocol.PathEnroll, big)
		}, 413},
		{"wait before enroll", func() *http.Request { return d.request(t, tb.url, protocol.PathWait, []byte(`{"state":""}`)) }, 404},
	}
	for _, tc := range cases {
		var e apiError
		if got := do(t, tc.req(), &e); got != tc.want || e.Error.Message == "" {
			t.Errorf("%s: status %d (%+v), want %d with a message", tc.name, got, e, tc.want)
		}
	}
	if n := tb.count(t); n != 0 {
		t.Fatalf("rejected requests stored %d devices", n)
	}
}

func TestReplayedRequestRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	body := d.enrollBody(t, d.mac)
	req := d.request(t, tb.url, protocol.PathEnroll, body)
	replay := req.Clone(context.Background())
	replay.Body = io.NopCloser(bytes.NewReader(body))
	if got := do(t, req, nil); got != 200 {
		t.Fatalf("first request: %d", got)
	}
	var e apiError
	if got := do(t, replay, &e); got != 401 || !strings.Contains(e.Error.Message, "nonce") {
		t.Fatalf("replay: %d %+v, want 401 about the nonce", got, e)
	}
}

func TestApproveErrorsChangeNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	a, b := newDevice(t), newDevice(t)
	b.mac = "02:00:00:00:00:02"
	ida, idb := tb.enroll(t, a).DeviceID, tb.enroll(t, b).DeviceID
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+ida+"/approve", map[string]string{"name": "gw-01"}, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+idb+"/dismiss", nil, nil); code != 200 {
		t.Fatalf("dismiss: %d", code)
	}
	c := newDevice(t)
	c.mac = "02:00:00:00:00:03"
	idc := tb.enroll(t, c).DeviceID
	cases := []struct {
		name, id string
		body     any
		want     int
	}{
		{"invalid name", idc, map[string]string{"name": "Bad Name"}, 400},
		{"missing name", idc, map[string]string{}, 400},
		{"not JSON", idc, "{", 400},
		{"duplicate name", idc, map[string]string{"name": "gw-01"}, 409},
		{"dismissed device", idb, map[string]string{"name": "gw-02"}, 409},
		{"unknown device", "nosuchdevice", map[string]string{"name": "gw-03"}, 404},
	}
	for _, tc := range cases {
		var e apiError
		if got := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+tc.id+"/approve", tc.body, &e); got != tc.want || e.Error.Message == "" {
			t.Errorf("%s: %d %+v, want %d", tc.name, got, e, tc.want)
		}
	}
	var d gatehouse.Device
	tb.call(t, tb.admin, "GET", "/api/v1/devices/"+idc, nil, &d)
	if d.State != gatehouse.StatePending || d.Name != "" {
		t.Fatalf("device changed by refused approvals: %+v", d)
	}
}

func TestListFilter(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	var l provision.DeviceList
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices?state=pending", nil, &l); code != 200 || l.Total != 1 || l.Devices[0].ID != id {
		t.Fatalf("pending list = %d %+v", code, l)
	}
	tb.call(t, tb.view, "GET", "/api/v1/devices?state=provisioned", nil, &l)
	if l.Total != 0 {
		t.Fatalf("provisioned list = %+v", l)
	}
	var e apiError
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices?state=bogus", nil, &e); code != 400 {
		t.Fatalf("bogus state = %d", code)
	}
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices?limit=abc", nil, &e); code != 400 {
		t.Fatalf("bad limit = %d", code)
	}
	// A huge offset would make SQLite walk the whole table.
	for _, off := range []string{"9223372036854775807", "1000001"} {
		if code := tb.call(t, tb.view, "GET", "/api/v1/devices?limit=1000&offset="+off, nil, &e); code != 400 || !strings.Contains(e.Error.Message, "offset") {
			t.Fatalf("offset %s = %d %+v, want 400 naming the offset", off, code, e)
		}
	}
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices?offset=1000000", nil, &l); code != 200 || len(l.Devices) != 0 {
		t.Fatalf("offset at the bound = %d %+v, want an empty page", code, l)
	}
}

// heldNotifier tells the test of every Subscribe: a long poll subscribes to
// its device before it reads the state and waits, so once the test hears of
// it, a change must wake that poll.
type heldNotifier struct {
	provision.Notifier
	held chan string // device ids, one per Subscribe
}

func (n *heldNotifier) Subscribe(id string) (<-chan struct{}, func()) {
	ch, stop := n.Notifier.Subscribe(id)
	select {
	case n.held <- id:
	default: // nobody listens for this one; never block a request
	}
	return ch, stop
}

func TestLongPollWakesOnApproval(t *testing.T) {
	t.Parallel()
	// The poll is held for 30 s, as in production; waking within wakeBound
	// can only be the approval's doing. The bound leaves a loaded machine
	// seconds to answer.
	const longPoll, wakeBound = 30 * time.Second, 10 * time.Second
	n := &heldNotifier{Notifier: provision.NewLocalNotifier(), held: make(chan string, 1)}
	tb := setupWith(t, setupOpts{notifier: n, longPoll: longPoll})
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	type answer struct {
		st   protocol.Status
		code int
		err  error
	}
	done := make(chan answer, 1)
	req := d.request(t, tb.url, protocol.PathWait, []byte(`{"state":"pending"}`))
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var a answer
		a.code, a.err = resp.StatusCode, json.NewDecoder(resp.Body).Decode(&a.st)
		done <- a
	}()
	select {
	case got := <-n.held:
		if got != id {
			t.Fatalf("a long poll subscribed to %s, want %s", got, id)
		}
	case a := <-done:
		t.Fatalf("the long poll answered before it was held: %d %+v %v", a.code, a.st, a.err)
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll was not held within 20 s")
	}
	start := time.Now()
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": "gw-lp"}, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	select {
	case a := <-done:
		if a.err != nil || a.code != 200 {
			t.Fatalf("long poll: %d %v", a.code, a.err)
		}
		if a.st.State == "pending" {
			t.Fatalf("long poll answered %q; want a changed state", a.st.State)
		}
		t.Logf("long poll woke %v after the approval was sent", time.Since(start).Round(time.Millisecond))
	case <-time.After(wakeBound):
		t.Fatalf("long poll still held %v after approval; it must wake on the change, not at its %v timeout", wakeBound, longPoll)
	}
}

// signedByWeakRSA signs by hand with RSA 1024, which SignRequest refuses to
// do, to show the server refuses it too.
func signedByWeakRSA(t *testing.T, url string, body []byte) *http.Request {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	r, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), strings.Repeat("ab", 16)
	sum := sha256.Sum256(protocol.StringToSign("POST", r.URL.RequestURI(), body, ts, nonce))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	r.Header.Set(protocol.HeaderKey, base64.StdEncoding.EncodeToString(spki))
	r.Header.Set(protocol.HeaderTimestamp, ts)
	r.Header.Set(protocol.HeaderNonce, nonce)
	r.Header.Set(protocol.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return r
}
