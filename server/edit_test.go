package server_test

import (
	"strings"
	"testing"

	"gatehouse"
)

// TestEditDevice: labels change over PATCH; a rename with DPS and the PKI
// configured is a 409 that names them, and bad bodies are a 400 that
// changes nothing.
func TestEditDevice(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	dev := newDevice(t)
	id := tb.enroll(t, dev).DeviceID
	if code := tb.call(t, tb.admin, "PATCH", "/api/v1/devices/"+id, map[string]any{"labels": map[string]string{"site": "a"}}, nil); code != 409 {
		t.Errorf("relabel a pending gateway: %d, want 409", code)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": "gw-edit"}, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	var d gatehouse.Device
	if code := tb.call(t, tb.admin, "PATCH", "/api/v1/devices/"+id, map[string]any{"labels": map[string]string{"site": "a"}}, &d); code != 200 || d.Labels["site"] != "a" {
		t.Fatalf("relabel: %d %+v", code, d)
	}
	var e apiError
	if code := tb.call(t, tb.admin, "PATCH", "/api/v1/devices/"+id, map[string]string{"name": "gw-other"}, &e); code != 409 ||
		!strings.Contains(e.Error.Message, "dps:") || !strings.Contains(e.Error.Message, "vault:") {
		t.Errorf("rename: %d %+v, want 409 naming dps and vault", code, e)
	}
	for name, body := range map[string]any{"not JSON": "{", "unknown field": map[string]string{"nmae": "x"}, "bad label": map[string]any{"labels": map[string]string{"A": "1"}}} {
		if code := tb.call(t, tb.admin, "PATCH", "/api/v1/devices/"+id, body, nil); code != 400 {
			t.Errorf("%s: %d, want 400", name, code)
		}
	}
	if code := tb.call(t, tb.view, "PATCH", "/api/v1/devices/"+id, map[string]any{"labels": map[string]string{}}, nil); code != 403 {
		t.Errorf("viewer: %d, want 403", code)
	}
	tb.call(t, tb.admin, "GET", "/api/v1/devices/"+id, nil, &d)
	if d.Name != "gw-edit" || len(d.Labels) != 1 || d.Labels["site"] != "a" {
		t.Errorf("refused edits changed the gateway: %+v", d)
	}
}
