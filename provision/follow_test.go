package provision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/manifest"
	"gatehouse/provision"
)

// staticManifests renders a fixed manifest that names the gateway.
type staticManifests struct{}

func (staticManifests) Render(d manifest.Data) (json.RawMessage, error) {
	return json.RawMessage(fmt.Sprintf(`{"modulesContent":{"$edgeAgent":{"properties.desired":{"schemaVersion":"1.1","modules":{}}},`+
		`"$edgeHub":{"properties.desired":{"schemaVersion":"1.1","routes":{}}},"link":{"properties.desired":{"gateway":%q,"hub":%q}}}}`,
		d.Name, d.Hub)), nil
}

// lookingDPS counts the registration lookups the follow-ups make.
type lookingDPS struct {
	gatehouse.DPS
	looks atomic.Int32
}

func (d *lookingDPS) Registration(ctx context.Context, registrationID string) (gatehouse.Registration, error) {
	d.looks.Add(1)
	return d.DPS.Registration(ctx, registrationID)
}

func followConfig(tb *testBundle) testConfig {
	cfg := fastConfig(tb.backends())
	cfg.Manifests = staticManifests{}
	cfg.FollowPollMin, cfg.FollowPollMax = 20*time.Millisecond, 50*time.Millisecond
	return cfg
}

// provisionOne approves a fresh gateway and waits until it is provisioned.
func (tb *testBundle) provisionOne(t *testing.T, name string) (*gateway, string) {
	t.Helper()
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: name}); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, g, gatehouse.StateProvisioned)
	return g, id
}

// register does what IoT Edge does on the gateway with its DPS key.
func (tb *testBundle) register(t *testing.T, name, hub string) {
	t.Helper()
	e, err := tb.dps.GetEnrollment(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.dps.Register(name, e.PrimaryKey, hub); err != nil {
		t.Fatal(err)
	}
}

func TestFollowUpAppliesManifest(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "f.db")), followConfig(tb))
	g, id := tb.provisionOne(t, "gw-follow")
	tb.register(t, "gw-follow", "hub-b.azure-devices.net")
	tb.waitFor(t, g, gatehouse.StateConfigured)
	cfg, ok := tb.hub.Configuration("hub-b.azure-devices.net", "gw-follow")
	if !ok || !strings.Contains(string(cfg), `"gateway":"gw-follow"`) {
		t.Fatalf("hub configuration = %s (%v)", cfg, ok)
	}
	d, _ := tb.svc.Device(context.Background(), id)
	if d.Hub != "hub-b.azure-devices.net" {
		t.Fatalf("device hub = %q", d.Hub)
	}
	l, _ := tb.svc.ListDevices(context.Background(), provision.ListFilter{})
	if l.Devices[0].Hub != "hub-b.azure-devices.net" || len(l.Devices[0].Steps) != 4 || l.Devices[0].Steps[0].Output != nil {
		t.Fatalf("listed device: hub %q, steps %+v", l.Devices[0].Hub, l.Devices[0].Steps)
	}
	assertEvents(t, tb, id, "provisioned", "assigned", "manifest_applied")
}

func TestFollowUpResumesAfterRestart(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	path := filepath.Join(t.TempDir(), "f.db")
	db := openDB(t, path)
	cfg := followConfig(tb)
	dps := &lookingDPS{DPS: cfg.Backends.DPS}
	cfg.Backends.DPS = dps
	first, err := provision.New(db, cfg.build())
	if err != nil {
		t.Fatal(err)
	}
	first.Start(context.Background())
	tb.svc = first
	g, _ := tb.provisionOne(t, "gw-restart")
	// Two looks at DPS while nothing is registered: the second comes after
	// the first snoozed the follow-up, so it is in the queue, snoozed or
	// about to be, when the service stops.
	if !eventually(waitTimeout, func() bool { return dps.looks.Load() >= 2 }) {
		t.Fatalf("the follow-up looked at DPS %d times in %v, want 2", dps.looks.Load(), waitTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	first.Stop(ctx)
	cancel()
	tb.register(t, "gw-restart", "")
	tb.svc = startService(t, db, followConfig(tb))
	tb.waitFor(t, g, gatehouse.StateConfigured)
}

func TestFollowUpStallsThenRetries(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cfg := followConfig(tb)
	cfg.FollowDeadline = 300 * time.Millisecond
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "f.db")), cfg)
	// Not provisionOne: on a loaded machine the gateway can stall before a
	// wait for "provisioned" sees that state, and that wait would never end.
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-stall"}); err != nil {
		t.Fatal(err)
	}
	st := tb.waitFor(t, g, gatehouse.StateStalled)
	if st.Bundle == nil {
		t.Fatal("a stalled gateway that never fetched its bundle cannot get it")
	}
	d, _ := tb.svc.Device(context.Background(), id)
	if !strings.Contains(d.Reason, "not assigned to an IoT Hub within") {
		t.Fatalf("stalled reason = %q", d.Reason)
	}
	tb.register(t, "gw-stall", "")
	if _, err := tb.svc.Retry(context.Background(), "op", id); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, g, gatehouse.StateConfigured)
	assertEvents(t, tb, id, "stalled", "retry_requested", "manifest_applied")
	_, err := tb.svc.Retry(context.Background(), "op", id)
	wantCode(t, err, gatehouse.ECONFLICT)
}

func TestFollowUpUnknownHubStalls(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cfg := followConfig(tb)
	cfg.Backends.IoTHub = onlyHubs{tb.hub, []string{"hub-a.azure-devices.net"}}
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "f.db")), cfg)
	g, id := tb.provisionOne(t, "gw-elsewhere")
	tb.register(t, "gw-elsewhere", "hub-b.azure-devices.net")
	tb.waitFor(t, g, gatehouse.StateStalled)
	d, _ := tb.svc.Device(context.Background(), id)
	if !strings.Contains(d.Reason, "hub-b.azure-devices.net") || !strings.Contains(d.Reason, "no credentials") {
		t.Fatalf("reason = %q", d.Reason)
	}
}

// onlyHubs holds credentials for some hubs only.
type onlyHubs struct {
	gatehouse.IoTHub
	hubs []string
}

func (o onlyHubs) Hubs() []string { return o.hubs }

func TestRetryRunsFailedStepNow(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	flaky := newGate(false)
	flaky.fails.Store(1)
	cfg := fastConfig(tb.backends())
	cfg.RetryBase, cfg.RetryMax = time.Hour, time.Hour // only an operator's retry can help
	cfg.Backends.PKI = gatedPKI{PKI: tb.pki, gate: flaky}
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "r.db")), cfg)
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-retry"}); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, g, gatehouse.StateFailed)
	if _, err := tb.svc.Retry(context.Background(), "op", id); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, g, gatehouse.StateProvisioned)
}
