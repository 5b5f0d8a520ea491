package mender

// Device and auth set answers, from plain httptest servers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gatehouse"
	"gatehouse/rest"
)

// recorded is one request a fake server saw.
type recorded struct{ method, path, body string }

// recorder answers requests in turn and remembers them.
type recorder struct {
	mu   sync.Mutex
	seen []recorded
}

func (rec *recorder) handler(answers ...func(w http.ResponseWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, recorded{r.Method, r.URL.RequestURI(), string(bytes.TrimSpace(body))})
		n := len(rec.seen) - 1
		rec.mu.Unlock()
		answers[min(n, len(answers)-1)](w)
	}
}

func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.seen...)
}

func body(s string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { fmt.Fprint(w, s) }
}

func statusBody(code int, s string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(code)
		fmt.Fprint(w, s)
	}
}

// The 409 of a real deviceauth: the device without its auth sets.
const conflict409 = `{"id":"d1","identity_data":{"mac":"02:00:00:00:00:01"},"status":"pending",
	"created_ts":"2026-01-01T00:00:00Z","updated_ts":"2026-01-01T00:00:00Z","auth_sets":null,"decommissioning":false}`

func TestConflictNullAuthSets(t *testing.T) {
	c := fake(t, (&recorder{}).handler(statusBody(http.StatusConflict, conflict409)))
	dev, err := c.Preauthorize(context.Background(), mac1, "KEY", false)
	if !errors.Is(err, gatehouse.ErrBackendExists) || rest.StatusOf(err) != http.StatusConflict {
		t.Fatalf("err = %v, want a 409 wrapping ErrBackendExists", err)
	}
	if dev.ID != "d1" || dev.Status != "pending" || dev.AuthSets != nil {
		t.Errorf("device = %+v, want d1, pending, auth sets unknown (nil)", dev)
	}
}

// TestPreauthorizeForceKnown: a forced preauthorize of a known identity
// answers 201 with a Location naming no device (PostDevicesV2Handler sends
// the id it generated), so the client learns the device from a plain 409
// first, then forces, then reads the device back.
func TestPreauthorizeForceKnown(t *testing.T) {
	rec := &recorder{}
	c := fake(t, rec.handler(
		statusBody(http.StatusConflict, conflict409),
		func(w http.ResponseWriter) {
			w.Header().Set("Location", "devices/5d5b5bd4-0000-4000-8000-000000000000")
			w.WriteHeader(http.StatusCreated)
		},
		body(`{"id":"d1","identity_data":{"mac":"02:00:00:00:00:01"},"status":"pending","auth_sets":[
			{"id":"a1","pubkey":"OLD","status":"pending"},{"id":"a2","pubkey":"KEY","status":"preauthorized"}]}`),
	))
	dev, err := c.Preauthorize(context.Background(), mac1, "KEY", true)
	if err != nil {
		t.Fatal(err)
	}
	want := []recorded{
		{"POST", devicesPath, `{"identity_data":{"mac":"02:00:00:00:00:01"},"pubkey":"KEY"}`},
		{"POST", devicesPath, `{"force":true,"identity_data":{"mac":"02:00:00:00:00:01"},"pubkey":"KEY"}`},
		{"GET", devicesPath + "/d1", ""},
	}
	if got := rec.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%v\nwant\n%v", got, want)
	}
	if dev.ID != "d1" || len(dev.AuthSets) != 2 || dev.AuthSets[1] != (gatehouse.MenderAuthSet{ID: "a2", PublicKey: "KEY", Status: "preauthorized"}) {
		t.Errorf("device = %+v, want d1 read back with the forced set", dev)
	}
}

// TestPreauthorizeForceNew: for an unknown identity the plain request
// already creates the device; nothing more is sent.
func TestPreauthorizeForceNew(t *testing.T) {
	rec := &recorder{}
	c := fake(t, rec.handler(status(http.StatusCreated, "Location", preauthOK)))
	dev, err := c.Preauthorize(context.Background(), mac1, "KEY", true)
	if err != nil || dev.ID != "0b6f5bd4-1d6f-4f2b-8b5e-4a57d0fbd5a1" || len(rec.requests()) != 1 {
		t.Errorf("Preauthorize = %+v, %v after %d requests; want the new device after one", dev, err, len(rec.requests()))
	}
}

func TestPreauthorizeForceFails(t *testing.T) {
	for name, answers := range map[string][]func(http.ResponseWriter){
		"ForceRefused": {statusBody(http.StatusConflict, conflict409), statusBody(http.StatusBadRequest, `{"error":"bad key"}`)},
		"ReadBackGone": {statusBody(http.StatusConflict, conflict409), status(http.StatusCreated, "Location", preauthOK), statusBody(http.StatusNotFound, `{"error":"device not found"}`)},
	} {
		t.Run(name, func(t *testing.T) {
			c := fake(t, (&recorder{}).handler(answers...))
			_, err := c.Preauthorize(context.Background(), mac1, "KEY", true)
			if err == nil || !strings.HasPrefix(err.Error(), "mender: ") || !strings.Contains(err.Error(), "d1") {
				t.Errorf("err = %v, want a mender error naming device d1", err)
			}
			noSecrets(t, err)
		})
	}
}

func TestGetDeviceFields(t *testing.T) {
	c := fake(t, (&recorder{}).handler(body(`{"id":"d1","identity_data":{"mac":"m","slot":2},"status":"accepted",
		"decommissioning":true,"check_in_time":"2026-01-01T00:00:00Z",
		"auth_sets":[{"id":"a1","device_id":"d1","pubkey":"K1","status":"accepted","ts":"2026-01-01T00:00:00Z"},
		{"id":"a2","pubkey":"K2","status":"rejected"}]}`)))
	dev, err := c.GetDevice(context.Background(), "d1")
	want := gatehouse.MenderDevice{
		ID: "d1", IdentityData: map[string]string{"mac": "m", "slot": "2"}, Status: "accepted", Decommissioning: true,
		AuthSets: []gatehouse.MenderAuthSet{{ID: "a1", PublicKey: "K1", Status: "accepted"}, {ID: "a2", PublicKey: "K2", Status: "rejected"}},
	}
	if err != nil || !reflect.DeepEqual(dev, want) {
		t.Errorf("GetDevice = %+v, %v\nwant %+v", dev, err, want)
	}
}

func TestSetAuthSetStatusSent(t *testing.T) {
	rec := &recorder{}
	c := fake(t, rec.handler(status(http.StatusNoContent)))
	if err := c.SetAuthSetStatus(context.Background(), "d/1", "a 1", "accepted"); err != nil {
		t.Fatal(err)
	}
	want := []recorded{{"PUT", devicesPath + "/d%2F1/auth/a%201/status", `{"status":"accepted"}`}}
	if got := rec.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if err := c.SetAuthSetStatus(context.Background(), "d1", "", "accepted"); err == nil {
		t.Error("an empty auth set id was sent")
	}
}

// TestClientErrorAnswers: 4xx answers come back at once, with their status
// and Mender's message, 404s as gatehouse.ErrBackendNotFound, whatever the
// body (deviceauth's DELETE handlers send none).
func TestClientErrorAnswers(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(c *Client) error{
		"GetDevice":        func(c *Client) error { _, err := c.GetDevice(ctx, "d1"); return err },
		"SetAuthSetStatus": func(c *Client) error { return c.SetAuthSetStatus(ctx, "d1", "a1", "accepted") },
		"Decommission":     func(c *Client) error { return c.Decommission(ctx, "d1") },
		"DeleteAuthSet":    func(c *Client) error { return c.DeleteAuthSet(ctx, "d1", "a1") },
		"Tags":             func(c *Client) error { _, err := c.Tags(ctx, "d1"); return err },
		"SetTag":           func(c *Client) error { return c.SetTag(ctx, "d1", "name", "gw-01") },
	}
	answers := map[string]struct {
		answer   func(w http.ResponseWriter)
		status   int
		notFound bool
	}{
		"404Body":     {statusBody(404, `{"error":"device not found","request_id":"r"}`), 404, true},
		"404Bare":     {status(404), 404, true},
		"400":         {statusBody(400, `{"error":"dev auth: bad request","request_id":"r"}`), 400, false},
		"412":         {statusBody(412, `{"error":"ETag does not match","request_id":"r"}`), 412, false},
		"422":         {statusBody(422, `{"error":"maximum number of accepted devices reached"}`), 422, false},
		"HTMLError":   {statusBody(403, `<html>forbidden</html>`), 403, false},
		"UnknownCode": {statusBody(418, ``), 418, false},
	}
	for callName, call := range calls {
		for name, a := range answers {
			t.Run(callName+"/"+name, func(t *testing.T) {
				var n atomic.Int32
				c := fake(t, func(w http.ResponseWriter, r *http.Request) { n.Add(1); a.answer(w) })
				err := call(c)
				if rest.StatusOf(err) != a.status || errors.Is(err, gatehouse.ErrBackendNotFound) != a.notFound || n.Load() != 1 {
					t.Errorf("err = %v after %d calls; want status %d once, not found %v", err, n.Load(), a.status, a.notFound)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "mender: ") {
					t.Errorf("err = %q, want the mender: prefix", err)
				}
				noSecrets(t, err)
			})
		}
	}
}

func TestTagsAnswers(t *testing.T) {
	tests := map[string]struct {
		body string
		want map[string]string
		ok   bool
	}{
		"Mixed": {`{"id":"d1","attributes":[{"name":"mac","scope":"identity","value":"m"},
			{"name":"name","scope":"tags","value":"gw-01","timestamp":"2026-01-01T00:00:00Z"},
			{"name":"cpus","scope":"inventory","value":4},{"name":"odd","scope":"tags","value":["a"]}]}`,
			map[string]string{"name": "gw-01"}, true},
		"NoAttributes": {`{"id":"d1"}`, map[string]string{}, true},
		"BadJSON":      {`{"id":"d1","attributes":[`, nil, false},
		"NotAnObject":  {`[]`, nil, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := fake(t, (&recorder{}).handler(body(tt.body)))
			got, err := c.Tags(context.Background(), "d1")
			if tt.ok && (err != nil || !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("Tags = %v, %v; want %v", got, err, tt.want)
			}
			if !tt.ok && (err == nil || !strings.HasPrefix(err.Error(), "mender: GET /api/management/v1/inventory/devices/d1")) {
				t.Errorf("Tags = %v, %v; want a mender error naming the call", got, err)
			}
		})
	}
}
