package provision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/manifest"
	"gatehouse/provision"
)

// labelManifests renders a manifest that carries the gateway's site label,
// as a template reading {{.Labels.site}} would.
type labelManifests struct{}

func (labelManifests) Render(d manifest.Data) (json.RawMessage, error) {
	return json.RawMessage(fmt.Sprintf(`{"modulesContent":{"$edgeAgent":{"properties.desired":{"schemaVersion":"1.1","modules":{}}},`+
		`"$edgeHub":{"properties.desired":{"schemaVersion":"1.1","routes":{}}},"link":{"properties.desired":{"site":%q}}}}`,
		d.Labels["site"])), nil
}

func events(t *testing.T, svc *provision.Service, id, kind string) []gatehouse.Event {
	t.Helper()
	all, err := svc.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []gatehouse.Event
	for _, e := range all {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestRelabelReappliesManifest(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cfg := followConfig(tb)
	cfg.Manifests = labelManifests{}
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "l.db")), cfg)
	ctx := context.Background()
	g, id := tb.provisionOne(t, "gw-relabel")
	tb.register(t, "gw-relabel", "hub-a.azure-devices.net")
	tb.waitFor(t, g, gatehouse.StateConfigured)

	labels := map[string]string{"site": "plant-b"}
	d, err := tb.svc.Update(from("op", "192.0.2.9", "r1"), "op", id, provision.Edit{Labels: &labels})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels["site"] != "plant-b" {
		t.Fatalf("labels after update = %v", d.Labels)
	}
	tb.waitFor(t, g, gatehouse.StateConfigured)
	got, _ := tb.hub.Configuration("hub-a.azure-devices.net", "gw-relabel")
	if !strings.Contains(string(got), `"site":"plant-b"`) {
		t.Fatalf("manifest not re-applied with the new label: %s", got)
	}
	if ev := events(t, tb.svc, id, "labels_changed"); len(ev) != 1 || ev[0].Detail != "(none) → site=plant-b" || ev[0].Actor != "op" {
		t.Errorf("labels_changed events = %+v", ev)
	}
	e := only(t, auditLog(t, tb.svc), provision.ActionDeviceUpdate, 1)[0]
	if e.Target != id || !strings.Contains(e.Detail, "plant-b") {
		t.Errorf("audit entry = %+v", e)
	}

	// The same labels again change nothing, and say so.
	if _, err := tb.svc.Update(ctx, "op", id, provision.Edit{Labels: &labels}); err != nil {
		t.Fatal(err)
	}
	if n := len(events(t, tb.svc, id, "labels_changed")); n != 1 {
		t.Errorf("%d labels_changed events after an unchanged edit, want 1", n)
	}
	bad := map[string]string{"Site": "x"}
	_, err = tb.svc.Update(ctx, "op", id, provision.Edit{Labels: &bad})
	wantCode(t, err, gatehouse.EINVALID)
}

// TestRenameRefusedNamingBackends: DPS, IoT Hub and the PKI keep a
// gateway's name in what they hold, so a rename is refused before
// anything changes, and the refusal names each of them.
func TestRenameRefusedNamingBackends(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "r.db")), followConfig(tb))
	ctx := context.Background()
	_, id := tb.provisionOne(t, "gw-fixed")
	name := "gw-moved"
	_, err := tb.svc.Update(ctx, "op", id, provision.Edit{Name: &name})
	wantCode(t, err, gatehouse.ECONFLICT)
	for _, b := range []string{"dps:", "iothub:", "vault:"} {
		if !strings.Contains(err.Error(), b) {
			t.Errorf("refusal %q does not name %s", err, b)
		}
	}
	d, _ := tb.svc.Device(ctx, id)
	mid := stepOutput(d, gatehouse.StepMender)[gatehouse.OutMenderDeviceID]
	if d.Name != "gw-fixed" || tb.mender.TagsOf(mid)["name"] != "gw-fixed" {
		t.Errorf("after a refused rename: name %q, Mender tag %q", d.Name, tb.mender.TagsOf(mid)["name"])
	}
	if len(events(t, tb.svc, id, "renamed")) != 0 {
		t.Error("a refused rename is on the timeline")
	}
}

// TestRenameInMender: with Mender alone, a rename moves the name tag and
// frees the old name; a lost answer from inventory is tried again.
func TestRenameInMender(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "m.db")), fastConfig(apis{Mender: tb.mender}))
	ctx := context.Background()
	_, id := tb.provisionOne(t, "gw-old")
	_, other := tb.provisionOne(t, "gw-other")

	taken := "gw-other"
	_, err := tb.svc.Update(ctx, "op", id, provision.Edit{Name: &taken})
	wantCode(t, err, gatehouse.ECONFLICT)

	name := "gw-new"
	tb.mender.LoseNext(1) // the tag is set, its answer lost: the read-back sees it
	d, err := tb.svc.Update(ctx, "op", id, provision.Edit{Name: &name})
	if err != nil {
		// A lost answer may fail this attempt; the operator's retry converges.
		if d, err = tb.svc.Update(ctx, "op", id, provision.Edit{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	mid := stepOutput(d, gatehouse.StepMender)[gatehouse.OutMenderDeviceID]
	if d.Name != "gw-new" || tb.mender.TagsOf(mid)["name"] != "gw-new" {
		t.Fatalf("after rename: name %q, Mender tag %q", d.Name, tb.mender.TagsOf(mid)["name"])
	}
	if ev := events(t, tb.svc, id, "renamed"); len(ev) != 1 || ev[0].Detail != "gw-old → gw-new" {
		t.Errorf("renamed events = %+v", ev)
	}
	// The old name is free again, in gatehouse and in Mender.
	g := newGateway(t)
	fresh := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(ctx, "op", fresh, provision.Approval{Name: "gw-old"}); err != nil {
		t.Fatalf("approving under the freed name: %v", err)
	}
	if o, _ := tb.svc.Device(ctx, other); o.Name != "gw-other" {
		t.Errorf("the other gateway's name changed to %q", o.Name)
	}
}

func TestEditRefusesPendingAndEmpty(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	id := tb.enroll(t, newGateway(t)).DeviceID
	name := "gw-early"
	_, err := tb.svc.Update(ctx, "op", id, provision.Edit{Name: &name})
	wantCode(t, err, gatehouse.ECONFLICT)
	_, err = tb.svc.Update(ctx, "op", id, provision.Edit{})
	wantCode(t, err, gatehouse.EINVALID)
	bad := "Not A Name"
	_, err = tb.svc.Update(ctx, "op", id, provision.Edit{Name: &bad})
	wantCode(t, err, gatehouse.EINVALID)
}
