package provision_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

func TestEnroll(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	st := tb.enroll(t, g)
	if st.State != "pending" || st.Fingerprint != g.sig.Fingerprint || len(st.VerificationCode) != 6 {
		t.Fatalf("status = %+v", st)
	}
	again := tb.enroll(t, g)
	if again.DeviceID != st.DeviceID {
		t.Fatalf("re-enrolling made a second device: %s vs %s", again.DeviceID, st.DeviceID)
	}
	l, err := tb.svc.ListDevices(context.Background(), provision.ListFilter{})
	if err != nil || l.Total != 1 {
		t.Fatalf("list = %+v, %v; want one device", l, err)
	}
	d := l.Devices[0]
	if d.MAC != g.mac || d.SourceAddr != "192.0.2.7" || d.KeyType != protocol.KeyEd25519 || d.VerificationCode != st.VerificationCode {
		t.Fatalf("device = %+v", d)
	}
}

func TestEnrollRejects(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	ctx := context.Background()
	_, err := tb.svc.Enroll(ctx, g.sig, protocol.EnrollRequest{MAC: "not-a-mac", SealKey: g.sealKey(t)}, "x")
	wantCode(t, err, gatehouse.EINVALID)
	_, err = tb.svc.Enroll(ctx, g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: []byte("short")}, "x")
	wantCode(t, err, gatehouse.EINVALID)
	if l, _ := tb.svc.ListDevices(ctx, provision.ListFilter{}); l.Total != 0 {
		t.Fatalf("bad enrollments stored %d devices", l.Total)
	}
	_, err = tb.svc.Wait(ctx, g.sig, "", "x", 0)
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func TestApproveProvisionsEveryBackendOnce(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	d, err := tb.svc.Approve(context.Background(), "token:alice", id, provision.Approval{Name: "gw-01"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "gw-01" || d.ApprovedBy != "token:alice" || len(d.Steps) != 3 {
		t.Fatalf("approved device = %+v", d)
	}
	st := tb.waitFor(t, g, gatehouse.StateProvisioned)
	checkBundle(t, g, st.Bundle, tb)
	if tb.mender.Len() != 1 || tb.dps.Len() != 1 || tb.pki.Len() != 1 {
		t.Fatalf("backend objects: mender %d, dps %d, vault %d; want 1 each", tb.mender.Len(), tb.dps.Len(), tb.pki.Len())
	}
	if tags := tb.mender.TagsOf(tb.mender.Devices()[0].ID); tags["name"] != "gw-01" {
		t.Fatalf("mender tags = %v", tags)
	}
	if err := tb.svc.Ack(context.Background(), g.sig); err != nil {
		t.Fatal(err)
	}
	after, err := tb.svc.Wait(context.Background(), g.sig, "", "x", 0)
	if err != nil || after.Bundle != nil {
		t.Fatalf("after ack: bundle still served (%v)", err)
	}
	assertEvents(t, tb, id, "enrolled", "approved", "step_started", "step_succeeded", "provisioned", "bundle_delivered")
}

func checkBundle(t *testing.T, g *gateway, b *protocol.Bundle, tb *testBundle) {
	t.Helper()
	if b == nil || b.Name != "gw-01" || b.DPSRegistrationID != "gw-01" || b.DPSIDScope != "0ne00TEST" {
		t.Fatalf("bundle = %+v", b)
	}
	key, _ := protocol.DeriveSealKey(g.key)
	primary, err := protocol.Open(key, protocol.FieldDPSPrimaryKey, b.Sealed[protocol.FieldDPSPrimaryKey])
	if err != nil || string(primary) != tb.dps.Enrollments()[0].PrimaryKey {
		t.Fatalf("sealed DPS key does not open to the enrollment's key: %v", err)
	}
	priv, err := protocol.Open(key, protocol.FieldPrivateKey, b.Sealed[protocol.FieldPrivateKey])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair([]byte(b.Certificate), priv); err != nil {
		t.Fatalf("certificate and sealed key do not match: %v", err)
	}
}

func assertEvents(t *testing.T, tb *testBundle, id string, kinds ...string) {
	t.Helper()
	evs, err := tb.svc.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range evs {
		have[e.Kind] = true
	}
	for _, k := range kinds {
		if !have[k] {
			t.Errorf("timeline lacks %q: %+v", k, evs)
		}
	}
}

func TestApproveRejects(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	a, b, c := newGateway(t), newGateway(t), newGateway(t)
	ida, idb, idc := tb.enroll(t, a).DeviceID, tb.enroll(t, b).DeviceID, tb.enroll(t, c).DeviceID
	if _, err := tb.svc.Approve(ctx, "op", ida, provision.Approval{Name: "gw-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.svc.Dismiss(ctx, "op", idc); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, id, as, code string
	}{
		{"invalid name", idb, "GW_B", gatehouse.EINVALID},
		{"empty name", idb, "", gatehouse.EINVALID},
		{"trailing dash", idb, "gw-", gatehouse.EINVALID},
		{"too long", idb, "a123456789012345678901234567890123456789012345678901234567890123", gatehouse.EINVALID},
		{"duplicate name", idb, "gw-a", gatehouse.ECONFLICT},
		{"dismissed device", idc, "gw-c", gatehouse.ECONFLICT},
		{"already approved", ida, "gw-z", gatehouse.ECONFLICT},
		{"unknown device", "nosuchdevice", "gw-x", gatehouse.ENOTFOUND},
	}
	for _, tc := range cases {
		_, err := tb.svc.Approve(ctx, "op", tc.id, provision.Approval{Name: tc.as})
		if gatehouse.ErrorCode(err) != tc.code {
			t.Errorf("%s: code %q (%v), want %q", tc.name, gatehouse.ErrorCode(err), err, tc.code)
		}
	}
	for id, want := range map[string]gatehouse.State{idb: gatehouse.StatePending, idc: gatehouse.StateDismissed} {
		d, _ := tb.svc.Device(ctx, id)
		if d.State != want || d.Name != "" {
			t.Errorf("device %s changed: state %s name %q", id, d.State, d.Name)
		}
	}
}

func TestDismiss(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	d, err := tb.svc.Dismiss(ctx, "op", id)
	if err != nil || d.State != gatehouse.StateDismissed {
		t.Fatalf("dismiss = %+v, %v", d, err)
	}
	if _, err := tb.svc.Dismiss(ctx, "op", id); err != nil {
		t.Fatalf("second dismiss: %v", err)
	}
	st := tb.enroll(t, g)
	if st.State != "dismissed" {
		t.Fatalf("re-enrolled dismissed device sees %+v", st)
	}
	_, err = tb.svc.Dismiss(ctx, "op", "nosuchdevice")
	wantCode(t, err, gatehouse.ENOTFOUND)
}

// A dismissal can be undone: the gateway waits again, its agent is told so,
// and it can then be approved; only dismissed gateways move back.
func TestRestoreUndoesDismiss(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Dismiss(ctx, "op", id); err != nil {
		t.Fatal(err)
	}
	d, err := tb.svc.Restore(ctx, "op2", id)
	if err != nil || d.State != gatehouse.StatePending {
		t.Fatalf("restore = %+v, %v", d, err)
	}
	if st := tb.enroll(t, g); st.State != "pending" || st.DeviceID != id {
		t.Fatalf("the agent after the restore sees %+v", st)
	}
	if _, err := tb.svc.Restore(ctx, "op2", id); err != nil {
		t.Fatalf("restoring a pending gateway again: %v", err)
	}
	assertEvents(t, tb, id, "enrolled", "dismissed", "restored")
	if _, err := tb.svc.Approve(ctx, "op", id, provision.Approval{Name: "gw-restored"}); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, g, gatehouse.StateProvisioned)
	_, err = tb.svc.Restore(ctx, "op", id)
	wantCode(t, err, gatehouse.ECONFLICT)
	_, err = tb.svc.Restore(ctx, "op", "nosuchdevice")
	wantCode(t, err, gatehouse.ENOTFOUND)
	page, err := tb.svc.AuditLog(ctx, provision.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var restores []string
	for _, e := range page.Entries {
		if e.Action == provision.ActionDeviceRestore {
			restores = append(restores, e.Actor+" "+strings.SplitN(e.Result, ":", 2)[0])
		}
	}
	if want := []string{"op refused", "op refused", "op2 ok", "op2 ok"}; strings.Join(restores, ",") != strings.Join(want, ",") {
		t.Errorf("restore entries, newest first: %v, want %v", restores, want)
	}
}

func TestFailingStepIsShownAndRetried(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	flaky := newGate(false)
	flaky.fails.Store(3)
	cfg := fastConfig(tb.backends())
	cfg.Backends.DPS = gatedDPS{DPS: tb.dps, gate: flaky}
	// Retries at least half a second apart, so the failed device is still
	// failed when the test reads it (fastConfig's 10 ms retry could move it
	// on first on a loaded machine).
	cfg.RetryBase, cfg.RetryMax = time.Second, time.Second
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "flaky.db")), cfg)
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-01"}); err != nil {
		t.Fatal(err)
	}
	failed := tb.waitFor(t, g, gatehouse.StateFailed)
	if failed.Bundle != nil {
		t.Fatal("failed device got a bundle")
	}
	d, _ := tb.svc.Device(context.Background(), id)
	if d.Reason == "" {
		t.Fatal("failed device has no reason")
	}
	tb.waitFor(t, g, gatehouse.StateProvisioned)
	d, _ = tb.svc.Device(context.Background(), id)
	for _, s := range d.Steps {
		if s.Name == gatehouse.StepDPS && s.Attempts != 4 {
			t.Errorf("dps attempts = %d, want 4", s.Attempts)
		}
	}
	if d.Reason != "" || tb.dps.Len() != 1 {
		t.Fatalf("after recovery: reason %q, enrollments %d", d.Reason, tb.dps.Len())
	}
	assertEvents(t, tb, id, "step_failed", "provisioned")
}

func TestNoBackendsProvisionsAtOnce(t *testing.T) {
	t.Parallel()
	db := openDB(t, t.TempDir()+"/g.db")
	tb := &testBundle{db: db, svc: startService(t, db, fastConfig(apis{}))}
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "solo"}); err != nil {
		t.Fatal(err)
	}
	st := tb.waitFor(t, g, gatehouse.StateProvisioned)
	if st.Bundle == nil || st.Bundle.Name != "solo" {
		t.Fatalf("bundle = %+v", st.Bundle)
	}
}
