package main

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"gatehouse"
)

func TestDevicesSet(t *testing.T) {
	current := gatehouse.Device{ID: "d1", Name: "gw-01", State: gatehouse.StateConfigured,
		Labels: map[string]string{"site": "a", "group": "line-3"}}
	after := current
	after.Name, after.Labels = "gw-02", map[string]string{"site": "b", "rack": "7"}
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices/{id}":   reply(200, current),
		"PATCH /api/v1/devices/{id}": reply(200, after),
	})
	code, out, errOut := runCLI(t, envFor(api), "set", "d1", "--name", "gw-02", "--label", "site=b", "--label", "rack=7", "--unlabel", "group")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	want := []request{
		{Method: "GET", Path: "/api/v1/devices/d1"},
		{Method: "PATCH", Path: "/api/v1/devices/d1", Body: `{"name":"gw-02","labels":{"rack":"7","site":"b"}}`},
	}
	if got := api.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	if out != "d1 is gw-02, labels: rack=7 site=b\n" {
		t.Errorf("stdout = %q", out)
	}
}

func TestDevicesSetRenameOnlyAndRefusal(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"PATCH /api/v1/devices/{id}": apiError(409, "conflict", `cannot rename "gw-01" to "gw-02": dps: the gateway's DPS registration id is its name and cannot be changed`),
	})
	code, _, errOut := runCLI(t, envFor(api), "set", "d1", "--name", "gw-02")
	if code != 1 || !strings.Contains(errOut, "dps: the gateway's DPS registration id") {
		t.Fatalf("exit %d, stderr %q: want 1 and the refusal naming DPS", code, errOut)
	}
	if got := api.requests(); len(got) != 1 || got[0].Body != `{"name":"gw-02"}` {
		t.Errorf("a rename alone must not read or send labels: %+v", got)
	}
	if code, _, errOut := runCLI(t, envFor(api), "set", "d1"); code != 2 || !strings.Contains(errOut, "give --name") {
		t.Errorf("no change: exit %d, stderr %q", code, errOut)
	}
}
