package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
)

// TestDecommissionOverHTTP plans, then decommissions a pending gateway:
// the plan changes nothing, the decommission refuses the key on every
// device route with 410 and a message saying who did it, and forgetting
// lets the same key enroll as a new gateway.
func TestDecommissionOverHTTP(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	var plan gatehouse.Decommission
	if code := tb.call(t, tb.admin, "DELETE", "/api/v1/devices/"+id+"?dry_run=true", nil, &plan); code != 200 || !plan.DryRun {
		t.Fatalf("dry run: %d %+v", code, plan)
	}
	var e apiError
	if code := tb.call(t, tb.admin, "DELETE", "/api/v1/devices/"+id+"?dry_run=maybe", nil, &e); code != 400 || e.Error.Code != gatehouse.EINVALID {
		t.Fatalf("bad dry_run: %d %+v", code, e)
	}
	var dev gatehouse.Device
	tb.call(t, tb.admin, "GET", "/api/v1/devices/"+id, nil, &dev)
	if dev.State != gatehouse.StatePending {
		t.Fatalf("after the dry run the gateway is %s", dev.State)
	}
	var dec gatehouse.Decommission
	if code := tb.call(t, tb.admin, "DELETE", "/api/v1/devices/"+id, nil, &dec); code != 200 || dec.By != "token:admin" {
		t.Fatalf("decommission: %d %+v", code, dec)
	}
	for _, path := range []string{protocol.PathEnroll, protocol.PathWait, protocol.PathAck} {
		body := d.enrollBody(t, d.mac)
		if path != protocol.PathEnroll {
			body, _ = json.Marshal(map[string]string{})
		}
		var refused apiError
		code := do(t, d.request(t, tb.url, path, body), &refused)
		if code != http.StatusGone || refused.Error.Code != gatehouse.EGONE ||
			!strings.Contains(refused.Error.Message, "decommissioned by token:admin on ") {
			t.Errorf("%s after decommission: %d %+v", path, code, refused)
		}
	}
	var f gatehouse.Forgotten
	if code := tb.call(t, tb.view, "POST", "/api/v1/devices/"+id+"/forget", nil, &e); code != 403 {
		t.Fatalf("a viewer forgot a gateway: %d", code)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/forget", nil, &f); code != 200 || f.DeviceID != id {
		t.Fatalf("forget: %d %+v", code, f)
	}
	if code := tb.call(t, tb.admin, "GET", "/api/v1/devices/"+id, nil, &e); code != 404 || !strings.Contains(e.Error.Message, "forgotten") {
		t.Fatalf("the forgotten gateway: %d %+v", code, e)
	}
	if again := tb.enroll(t, d); again.DeviceID == id || again.State != "pending" {
		t.Fatalf("after forget: %+v", again)
	}
}
