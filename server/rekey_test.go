package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// TestRekeyOverREST: a reflashed gateway shows as a re-key candidate beside
// its gateway in the device JSON, is approved with an empty body, and its
// old key is refused on the device API with a 403 that says why.
func TestRekeyOverREST(t *testing.T) {
	tb := setup(t)
	old := newDevice(t)
	id := tb.enroll(t, old).DeviceID
	var d gatehouse.Device
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": "gw-01"}, &d); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	waitState(t, tb, id, gatehouse.StateProvisioned)

	fresh := newDevice(t) // same MAC, new key
	cand := tb.enroll(t, fresh).DeviceID
	var c, gw gatehouse.Device
	tb.call(t, tb.view, "GET", "/api/v1/devices/"+cand, nil, &c)
	tb.call(t, tb.view, "GET", "/api/v1/devices/"+id, nil, &gw)
	if c.RekeyOf == nil || c.RekeyOf.ID != id || c.RekeyOf.Name != "gw-01" || len(gw.RekeyCandidates) != 1 || gw.RekeyCandidates[0] != cand {
		t.Fatalf("candidate rekey_of %+v, gateway rekey_candidates %v", c.RekeyOf, gw.RekeyCandidates)
	}
	var list struct{ Devices []gatehouse.Device }
	tb.call(t, tb.view, "GET", "/api/v1/devices?state=pending", nil, &list)
	if len(list.Devices) != 1 || list.Devices[0].RekeyOf == nil {
		t.Fatalf("pending list = %+v; want the candidate flagged", list.Devices)
	}

	if code := tb.call(t, tb.view, "POST", "/api/v1/devices/"+cand+"/approve", map[string]string{}, nil); code != http.StatusForbidden {
		t.Fatalf("a viewer approved a re-key: %d", code)
	}
	var e apiError
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+cand+"/approve", map[string]string{"name": "gw-01"}, &e); code != http.StatusConflict {
		t.Fatalf("re-key under another name: %d %+v", code, e)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+cand+"/approve", map[string]string{}, &d); code != 200 || d.ID != id || d.Name != "gw-01" {
		t.Fatalf("approve re-key: %d %+v", code, d)
	}
	waitState(t, tb, id, gatehouse.StateProvisioned)

	if code := do(t, old.request(t, tb.url, protocol.PathEnroll, old.enrollBody(t, old.mac)), &e); code != http.StatusForbidden || !strings.Contains(e.Error.Message, "re-key") {
		t.Fatalf("old key enrolls: %d %+v; want 403 naming the re-key", code, e)
	}
	if st := tb.enroll(t, fresh); st.DeviceID != id || st.Name != "gw-01" {
		t.Fatalf("new key sees %+v", st)
	}
}

// waitState polls a device until it reaches want.
func waitState(t *testing.T, tb *testBundle, id string, want gatehouse.State) {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		d, err := tb.svc.Device(context.Background(), id)
		if err == nil && d.State == want {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("device %s is %v (%v), want %s", id, d, err, want)
		case <-tick.C:
		}
	}
}
