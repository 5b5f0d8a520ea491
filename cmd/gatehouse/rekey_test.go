package main

import (
	"net/http"
	"reflect"
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
