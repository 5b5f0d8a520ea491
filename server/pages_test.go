package server_test

import (
	"strings"
	"testing"

	"gatehouse"
)

// TestNameConflictDetails: a name another gateway holds is refused with 409
// and the holder's id, name and MAC in error.conflict, for the page to link
// to; the message says the MAC too, for the CLI.
func TestNameConflictDetails(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	a, b := newDevice(t), newDevice(t)
	b.mac = "02:00:00:00:00:02"
	ida, idb := tb.enroll(t, a).DeviceID, tb.enroll(t, b).DeviceID
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+ida+"/approve", map[string]string{"name": "gw-01"}, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	var e struct {
		Error struct {
			Code, Message string
			Conflict      *gatehouse.Conflict
		} `json:"error"`
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+idb+"/approve", map[string]string{"name": "gw-01"}, &e); code != 409 {
		t.Fatalf("approve under a taken name: %d %+v, want 409", code, e)
	}
	want := gatehouse.Conflict{ID: ida, Name: "gw-01", MAC: a.mac}
	if e.Error.Code != gatehouse.ECONFLICT || e.Error.Conflict == nil || *e.Error.Conflict != want {
		t.Errorf("error = %+v, want code conflict naming %+v", e.Error, want)
	}
	if !strings.Contains(e.Error.Message, a.mac) || !strings.Contains(e.Error.Message, ida) {
		t.Errorf("message %q does not name the other gateway's MAC and id", e.Error.Message)
	}

	// Errors about no other gateway carry no conflict.
	e.Error.Conflict = nil
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/nosuch/approve", map[string]string{"name": "gw-02"}, &e); code != 404 || e.Error.Conflict != nil {
		t.Errorf("unknown device: %d %+v", code, e.Error)
	}
}

// TestApproveRefusesLongName: over HTTP, a 70-character name is a 400 that
// says it is too long, and the gateway stays pending and unnamed.
func TestApproveRefusesLongName(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	id := tb.enroll(t, newDevice(t)).DeviceID
	var e apiError
	long := strings.Repeat("a", 70)
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": long}, &e); code != 400 {
		t.Fatalf("approve with a 70-character name: %d %+v, want 400", code, e)
	}
	if !strings.Contains(e.Error.Message, "70 characters long") || !strings.Contains(e.Error.Message, "at most 63") {
		t.Errorf("message %q does not say the name is too long", e.Error.Message)
	}
	var d gatehouse.Device
	tb.call(t, tb.admin, "GET", "/api/v1/devices/"+id, nil, &d)
	if d.State != gatehouse.StatePending || d.Name != "" {
		t.Errorf("a refused long name changed the device: %s %q", d.State, d.Name)
	}
}

// TestSessionSaysSimulated: the session tells the page whether the backends
// are simulated, and says nothing of it when they are real.
func TestSessionSaysSimulated(t *testing.T) {
	t.Parallel()
	for _, simulated := range []bool{false, true} {
		tb := setupWith(t, setupOpts{simulated: simulated})
		br := newBrowser(t, tb.url)
		if code := br.login(t, tb.admin); code != 200 {
			t.Fatalf("login: %d", code)
		}
		var info map[string]any
		if code := br.do(t, "GET", "/api/v1/session", nil, nil, &info); code != 200 {
			t.Fatalf("session: %d", code)
		}
		got, present := info["simulated_backends"]
		if simulated && got != true || !simulated && present {
			t.Errorf("simulated %v: session says simulated_backends = %v (present %v)", simulated, got, present)
		}
	}
}
