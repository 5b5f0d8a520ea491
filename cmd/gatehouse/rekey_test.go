package main

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"gatehouse"
)

// TestDevicesApproveRekey: a re-key candidate is approved without --name;
// the server answers with the gateway it re-keys, and the CLI says so.
func TestDevicesApproveRekey(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/devices/{id}/approve": reply(200, gatehouse.Device{ID: "gw1", Name: "gw-01", State: gatehouse.StateApproved}),
	})
	code, out, errOut := runCLI(t, envFor(api), "approve", "cand1")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	want := []request{{Method: "POST", Path: "/api/v1/devices/cand1/approve", Body: `{}`}}
	if got := api.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	if out != "approved the re-key of gw-01 (gw1) with the key of cand1 (state: approved)\n" {
		t.Errorf("stdout = %q", out)
	}
}

// TestDevicesShowRekey: show names the gateway a candidate would re-key and
// how to approve it, and a gateway's candidates.
func TestDevicesShowRekey(t *testing.T) {
	cand := gatehouse.Device{ID: "cand1", State: gatehouse.StatePending, MAC: "02:00:00:00:00:01",
		RekeyOf: &gatehouse.RekeyTarget{ID: "gw1", Name: "gw-01", State: gatehouse.StateConfigured}}
	gw := gatehouse.Device{ID: "gw1", Name: "gw-01", State: gatehouse.StateConfigured, RekeyCandidates: []string{"cand1"}}
	for _, tc := range []struct {
		d    gatehouse.Device
		want string
	}{
		{cand, "Re-key of:          gw-01 (gw1, configured); approve with: gatehouse devices approve cand1\n"},
		{gw, "Re-key candidates:  cand1\n"},
	} {
		api := newFakeAPI(t, map[string]http.HandlerFunc{
			"GET /api/v1/devices/{id}":        reply(200, tc.d),
			"GET /api/v1/devices/{id}/events": reply(200, map[string]any{"events": []gatehouse.Event{}}),
		})
		code, out, errOut := runCLI(t, envFor(api), "show", tc.d.ID)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("exit %d, stderr %s, stdout:\n%s\nwant a line %q", code, errOut, out, tc.want)
		}
	}
}
