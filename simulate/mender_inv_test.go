package simulate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/simulate"
)

// TestMenderInventoryDelay: deviceauth hands new devices to inventory
// through workflows (devauth.go PreauthorizeDevice and
// getDeviceFromAuthRequest submit jobs; they do not write inventory). Until
// inventory holds a device, a tag write matches nothing and still succeeds
// (inventory.go UpsertAttributesWithUpdated; store upsertAttributes uses
// SetUpsert(false) for the tags scope), reads are 404 and searches miss it.
func TestMenderInventoryDelay(t *testing.T) {
	ctx := context.Background()
	for name, create := range map[string]func(t *testing.T, m *simulate.Mender) string{
		"Preauthorized": func(t *testing.T, m *simulate.Mender) string {
			d, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "ed25519"), false)
			if err != nil {
				t.Fatal(err)
			}
			return d.ID
		},
		"AuthRequest": func(t *testing.T, m *simulate.Mender) string {
			id, _ := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
			return id
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := simulate.NewMender()
			c := newClock(m)
			id := create(t, m)
			if err := m.SetTag(ctx, id, "name", "gw-01"); err != nil {
				t.Fatalf("SetTag before inventory holds the device: %v, want Mender's success", err)
			}
			c.Add(simulate.DefaultMenderInventoryDelay - time.Millisecond)
			if _, err := m.Tags(ctx, id); !errors.Is(err, gatehouse.ErrBackendNotFound) || m.InInventory(id) {
				t.Errorf("Tags just before the delay: %v, want ErrBackendNotFound", err)
			}
			if ids, _ := m.FindByTag(ctx, "name", "gw-01"); len(ids) != 0 {
				t.Errorf("FindByTag found %v before inventory held the device", ids)
			}
			c.Add(time.Millisecond)
			if tags, err := m.Tags(ctx, id); err != nil || len(tags) != 0 {
				t.Errorf("Tags once inventory holds the device = %v, %v; want none: the early write stored nothing", tags, err)
			}
			if err := m.SetTag(ctx, id, "name", "gw-01"); err != nil {
				t.Fatal(err)
			}
			if ids, err := m.FindByTag(ctx, "name", "gw-01"); err != nil || !reflect.DeepEqual(ids, []string{id}) {
				t.Errorf("FindByTag = %v, %v; want [%s]", ids, err, id)
			}
		})
	}
}

func TestMenderSetInventoryDelay(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	c := newClock(m)
	m.SetInventoryDelay(time.Hour)
	slow, _ := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "ed25519"), false)
	m.SetInventoryDelay(0)
	fast, _ := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:02"}, publicKeyPEM(t, "ed25519"), false)
	if m.InInventory(slow.ID) || !m.InInventory(fast.ID) {
		t.Errorf("in inventory: slow %v, fast %v; want the delay to apply per device, from its creation", m.InInventory(slow.ID), m.InInventory(fast.ID))
	}
	c.Add(time.Hour)
	if !m.InInventory(slow.ID) {
		t.Error("not in inventory after its delay")
	}
	m.SetInventoryDelay(time.Hour)
	later, _ := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:03"}, publicKeyPEM(t, "ed25519"), false)
	m.IndexNow()
	if !m.InInventory(later.ID) {
		t.Error("IndexNow did not index a waiting device")
	}
}

// TestMenderServerInventoryDevice: GET .../inventory/devices/{id}
// (GetDeviceHandler) is a 404 until inventory holds the device, then the
// DeviceInventoryResponse with identity, system and tags attributes and
// the tags ETag; a tag write with a stale If-Match is a 412 (ETag does not
// match), as is one for a device inventory does not hold.
func TestMenderServerInventoryDevice(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	_, h, _ := menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, "02:00:00:00:00:01")}.do(t, s)
	id := strings.TrimPrefix(h.Get("Location"), "devices/")
	get := menderCall{method: "GET", path: "/api/management/v1/inventory/devices/" + id, token: menderPAT}
	patch := menderCall{method: "PATCH", path: get.path + "/tags", token: menderPAT,
		body: []map[string]string{{"name": "name", "value": "gw-01", "description": "display name"}}}

	if status, _, body := get.do(t, s); status != http.StatusNotFound {
		t.Fatalf("before inventory holds it: %d %s, want 404", status, body)
	}
	patch.header = map[string]string{"If-Match": "anything"}
	if status, _, _ := patch.do(t, s); status != http.StatusPreconditionFailed {
		t.Errorf("If-Match on a device inventory does not hold: %d, want 412", status)
	}
	s.State.IndexNow()
	patch.header = nil
	if status, _, _ := patch.do(t, s); status != http.StatusOK {
		t.Fatalf("PATCH: %d", status)
	}
	status, h, body := get.do(t, s)
	dev := decodeInventoryDevice(t, body)
	etag := h.Get("ETag")
	if status != http.StatusOK || dev.ID != id || etag == "" {
		t.Fatalf("GET: %d %s ETag %q", status, body, etag)
	}
	want := map[string]string{"identity/mac": "02:00:00:00:00:01", "identity/status": "preauthorized", "tags/name": "gw-01"}
	for k, v := range want {
		if dev.attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q (%s)", k, dev.attrs[k], v, body)
		}
	}
	patch.header = map[string]string{"If-Match": "stale"}
	if status, _, _ := patch.do(t, s); status != http.StatusPreconditionFailed {
		t.Errorf("stale If-Match: %d, want 412", status)
	}
	put := menderCall{method: "PUT", path: patch.path, token: menderPAT, header: map[string]string{"If-Match": etag},
		body: []map[string]string{{"name": "site", "value": "north"}}}
	if status, _, _ := put.do(t, s); status != http.StatusOK {
		t.Errorf("PUT with the current ETag: %d, want 200", status)
	}
	if got := s.State.TagsOf(id); !reflect.DeepEqual(got, map[string]string{"site": "north"}) {
		t.Errorf("tags after PUT = %v, want the replaced set", got)
	}
}

type inventoryDevice struct {
	ID    string
	attrs map[string]string // scope/name → value
}

func decodeInventoryDevice(t *testing.T, body []byte) inventoryDevice {
	t.Helper()
	var d struct {
		ID         string `json:"id"`
		UpdatedTS  string `json:"updated_ts"`
		Attributes []struct {
			Name, Scope, Value string
		} `json:"attributes"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	out := inventoryDevice{ID: d.ID, attrs: map[string]string{}}
	for _, a := range d.Attributes {
		out.attrs[a.Scope+"/"+a.Name] = a.Value
	}
	return out
}

func TestMenderServerInventoryDelayOption(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT, InventoryDelay: -1})
	_, h, _ := menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, "02:00:00:00:00:01")}.do(t, s)
	id := strings.TrimPrefix(h.Get("Location"), "devices/")
	if !s.State.InInventory(id) {
		t.Error("InventoryDelay < 0: the device should be in inventory at once")
	}
	search := menderCall{method: "POST", path: "/api/management/v2/inventory/filters/search", token: menderPAT, body: map[string]any{}}
	if _, _, body := search.do(t, s); len(decodeIDs(t, body)) != 1 {
		t.Errorf("search = %s, want the device", body)
	}
	// An hour, not the default, so a slow machine cannot index the device
	// before the search.
	slow := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT, InventoryDelay: time.Hour})
	_, _, _ = menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, "02:00:00:00:00:01")}.do(t, slow)
	if _, _, body := search.do(t, slow); len(decodeIDs(t, body)) != 0 {
		t.Errorf("InventoryDelay 1h: search = %s right after preauthorize, want nothing yet", body)
	}
}
