package provision_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/store"
)

const hubA = "hub-a.azure-devices.net"

// configuredPair provisions gw-a and gw-b through every backend, the IoT Hub
// follow-up included, so each simulator holds one object per gateway.
func configuredPair(t *testing.T) (*testBundle, map[string]*gateway, map[string]string) {
	t.Helper()
	tb := setup(t)
	tb.mender.SetInventoryDelay(0)
	tb.db = openDB(t, filepath.Join(t.TempDir(), "decom.db"))
	tb.svc = startService(t, tb.db, followConfig(tb))
	gws, ids := map[string]*gateway{}, map[string]string{}
	for _, name := range []string{"gw-a", "gw-b"} {
		g, id := tb.provisionOne(t, name)
		tb.register(t, name, hubA)
		tb.waitFor(t, g, gatehouse.StateConfigured)
		gws[name], ids[name] = g, id
	}
	return tb, gws, ids
}

// holdings is what the four simulators hold of a gateway.
type holdings struct {
	menderDevice bool
	enrollment   bool
	registration bool
	hubDevice    bool
	liveCerts    int
}

func holdingsOf(t *testing.T, tb *testBundle, name, menderID string) holdings {
	t.Helper()
	var h holdings
	_, h.menderDevice = tb.mender.Device(menderID)
	_, err := tb.dps.GetEnrollment(context.Background(), name)
	h.enrollment = err == nil
	_, err = tb.dps.Registration(context.Background(), name)
	h.registration = err == nil
	h.hubDevice = slices.ContainsFunc(tb.hub.Devices(hubA), func(d gatehouse.HubDevice) bool { return d.DeviceID == name })
	for _, c := range tb.pki.Live() {
		if commonName(t, c.CertificatePEM) == name {
			h.liveCerts++
		}
	}
	return h
}

func commonName(t *testing.T, certPEM string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject.CommonName
}

// waitRemoved waits until every backend has removed the device.
func waitRemoved(t *testing.T, svc *provision.Service, id string) *gatehouse.Decommission {
	t.Helper()
	var dec *gatehouse.Decommission
	ok := eventually(waitTimeout, func() bool {
		d, err := svc.Device(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		dec = d.Decommission
		return dec != nil && dec.Done()
	})
	if !ok {
		t.Fatalf("decommission did not finish: %+v", dec)
	}
	return dec
}

func removalOf(dec *gatehouse.Decommission, backend string) gatehouse.BackendRemoval {
	for _, b := range dec.Backends {
		if b.Backend == backend {
			return b
		}
	}
	return gatehouse.BackendRemoval{}
}

func results(b gatehouse.BackendRemoval) []string {
	var out []string
	for _, r := range b.Removals {
		out = append(out, r.Object+": "+r.Result)
	}
	return out
}

// keepEarlierCert issues a second certificate for name, as a renewal would
// have, and keeps it unrevoked in the certificates table.
func keepEarlierCert(t *testing.T, tb *testBundle, db *store.DB, id, name string) string {
	t.Helper()
	ctx := context.Background()
	c, err := tb.pki.Issue(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := gatehouse.ParseDeviceCert(c.Serial, c.CertificatePEM)
	if err != nil {
		t.Fatal(err)
	}
	kept.DeviceID, kept.Origin, kept.Fingerprint = id, gatehouse.CertFromRenewal, "earlier"
	if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.AddCertificate(ctx, kept) }); err != nil {
		t.Fatal(err)
	}
	return c.Serial
}

func TestDecommissionRemovesExactlyThatGateway(t *testing.T) {
	t.Parallel()
	tb, gws, ids := configuredPair(t)
	ctx := context.Background()
	a, _ := tb.svc.Device(ctx, ids["gw-a"])
	b, _ := tb.svc.Device(ctx, ids["gw-b"])
	menderA, menderB := stepOutput(a, gatehouse.StepMender)[gatehouse.OutMenderDeviceID], stepOutput(b, gatehouse.StepMender)[gatehouse.OutMenderDeviceID]
	all := holdings{menderDevice: true, enrollment: true, registration: true, hubDevice: true, liveCerts: 1}
	if h := holdingsOf(t, tb, "gw-a", menderA); h != all {
		t.Fatalf("before: gw-a holdings %+v", h)
	}
	earlier := keepEarlierCert(t, tb, tb.db, ids["gw-a"], "gw-a")

	dec, err := tb.svc.Decommission(ctx, "token:alice", ids["gw-a"], false)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Backends) != 4 || dec.By != "token:alice" {
		t.Fatalf("decommission = %+v", dec)
	}
	// The key is refused at once, before the backends have finished.
	_, err = tb.svc.Wait(ctx, gws["gw-a"].sig, "", "x", 0)
	wantRefusal(t, err, gatehouse.EGONE, "decommissioned by token:alice")

	dec = waitRemoved(t, tb.svc, ids["gw-a"])
	if h := holdingsOf(t, tb, "gw-a", menderA); h != (holdings{}) {
		t.Errorf("after: gw-a still held: %+v", h)
	}
	if h := holdingsOf(t, tb, "gw-b", menderB); h != all {
		t.Errorf("after: gw-b lost something: %+v", h)
	}
	if got := results(removalOf(dec, "vault")); len(got) != 2 || !strings.Contains(strings.Join(got, ","), earlier+": revoked") {
		t.Errorf("vault receipt %v, want the recorded and the earlier serial revoked", got)
	}
	if got := results(removalOf(dec, "dps")); !slices.Equal(got, []string{"enrollment gw-a: removed", "registration state gw-a: already gone"}) {
		// The simulator drops the registration record with its enrollment.
		t.Errorf("dps receipt %v", got)
	}
	if got := results(removalOf(dec, "iothub")); !slices.Equal(got, []string{"device gw-a in " + hubA + ": removed"}) {
		t.Errorf("iothub receipt %v", got)
	}
	certs := keptCerts(t, tb, ids["gw-a"])
	for _, c := range certs {
		if c.RevokedAt == nil {
			t.Errorf("kept certificate %s not marked revoked", c.Serial)
		}
	}
	if len(certs) != 2 {
		t.Errorf("kept certificates %d, want 2", len(certs))
	}
	assertEvents(t, tb, ids["gw-a"], "decommissioned", "removed", "removed_everywhere")
	for _, call := range []func() error{
		func() error {
			_, err := tb.svc.Enroll(ctx, gws["gw-a"].sig, enrollReq(t, gws["gw-a"]), "x")
			return err
		},
		func() error { return tb.svc.Ack(ctx, gws["gw-a"].sig) },
	} {
		wantRefusal(t, call(), gatehouse.EGONE, "will not provision this key again")
	}

	// Again: nothing changes, no new job, and the audit log says so.
	calls := tb.mender.Calls() + tb.dps.Calls() + tb.hub.Calls() + tb.pki.Calls()
	evs, _ := tb.svc.Events(ctx, ids["gw-a"])
	if _, err := tb.svc.Decommission(ctx, "token:bob", ids["gw-a"], false); err != nil {
		t.Fatal(err)
	}
	again, _ := tb.svc.Events(ctx, ids["gw-a"])
	if len(again) != len(evs) || tb.mender.Calls()+tb.dps.Calls()+tb.hub.Calls()+tb.pki.Calls() != calls {
		t.Errorf("a second decommission changed something: %d events (was %d)", len(again), len(evs))
	}
	entries := only(t, auditLog(t, tb.svc), provision.ActionDeviceDecommission, 2)
	if !strings.Contains(entries[1].Detail, "already decommissioned") || entries[0].Actor != "token:alice" {
		t.Errorf("audit entries %+v", entries)
	}
	if d, _ := tb.svc.Device(ctx, ids["gw-b"]); d.State != gatehouse.StateConfigured {
		t.Errorf("gw-b is %s", d.State)
	}
}

func TestDecommissionLostResponses(t *testing.T) {
	t.Parallel()
	faults := map[string]func(tb *testBundle){
		"mender": func(tb *testBundle) { tb.mender.LoseNext(1) },
		"dps":    func(tb *testBundle) { tb.dps.LoseNext(1) },
		"iothub": func(tb *testBundle) { tb.hub.LoseNext(1) },
		"vault":  func(tb *testBundle) { tb.pki.LoseNext(1) },
	}
	for backend, lose := range faults {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			tb, _, ids := configuredPair(t)
			ctx := context.Background()
			a, _ := tb.svc.Device(ctx, ids["gw-a"])
			menderA := stepOutput(a, gatehouse.StepMender)[gatehouse.OutMenderDeviceID]
			lose(tb)
			if _, err := tb.svc.Decommission(ctx, "op", ids["gw-a"], false); err != nil {
				t.Fatal(err)
			}
			dec := waitRemoved(t, tb.svc, ids["gw-a"])
			if h := holdingsOf(t, tb, "gw-a", menderA); h != (holdings{}) {
				t.Errorf("gw-a still held: %+v", h)
			}
			r := removalOf(dec, backend)
			if r.Attempts < 2 {
				t.Errorf("%s removal: %+v; want a retry after the lost answer", backend, r)
			}
			// The retry met its own work: gone already, or revoked again
			// (revoking twice succeeds).
			want := gatehouse.RemovalAlreadyGone
			if backend == "vault" {
				want = gatehouse.RemovalRevoked
			}
			if got := r.Removals[0].Result; got != want {
				t.Errorf("%s receipt %v, want %q first", backend, results(r), want)
			}
			if len(tb.mender.Devices()) != 1 || tb.dps.Len() != 1 || len(tb.hub.Devices(hubA)) != 1 || len(tb.pki.Live()) != 1 {
				t.Errorf("gw-b's objects: mender %d, dps %d, hub %d, live certs %d", len(tb.mender.Devices()), tb.dps.Len(), len(tb.hub.Devices(hubA)), len(tb.pki.Live()))
			}
		})
	}
}

func TestDecommissionDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	tb, _, ids := configuredPair(t)
	ctx := context.Background()
	db := tb.db
	before, sims := dumpDB(t, db), simState(t, tb)
	plan, err := tb.svc.Decommission(ctx, "op", ids["gw-a"], true)
	if err != nil {
		t.Fatal(err)
	}
	if after := dumpDB(t, db); after != before {
		t.Errorf("a dry run changed the database:\nbefore %s\nafter  %s", before, after)
	}
	if after := simState(t, tb); after != sims {
		t.Errorf("a dry run changed a backend:\nbefore %s\nafter  %s", sims, after)
	}
	if !plan.DryRun || len(plan.Backends) != 4 {
		t.Fatalf("plan = %+v", plan)
	}
	a, _ := tb.svc.Device(ctx, ids["gw-a"])
	want := map[string][]string{
		"mender": {"device " + stepOutput(a, gatehouse.StepMender)[gatehouse.OutMenderDeviceID] + ": would remove"},
		"dps":    {"enrollment gw-a: would remove", "registration state gw-a: would remove"},
		"iothub": {"device gw-a in " + hubA + ": would remove"},
		"vault":  {"certificate " + stepOutput(a, gatehouse.StepVault)[gatehouse.OutSerial] + ": would revoke"},
	}
	for backend, w := range want {
		if got := results(removalOf(plan, backend)); !slices.Equal(got, w) {
			t.Errorf("%s plan %v, want %v", backend, got, w)
		}
	}
	if a.State != gatehouse.StateConfigured || a.Decommission != nil {
		t.Errorf("after a dry run the device is %s with %+v", a.State, a.Decommission)
	}
}

func TestDecommissionFailingBackendRetriesVisibly(t *testing.T) {
	t.Parallel()
	tb, _, ids := configuredPair(t)
	ctx := context.Background()
	id := ids["gw-a"]
	tb.dps.FailNext(1<<30, nil)
	if _, err := tb.svc.Decommission(ctx, "op", id, false); err != nil {
		t.Fatal(err)
	}
	var dec *gatehouse.Decommission
	ok := eventually(waitTimeout, func() bool {
		d, _ := tb.svc.Device(ctx, id)
		dec = d.Decommission
		dps, hub := removalOf(dec, "dps"), removalOf(dec, "iothub")
		return dps.State == gatehouse.StepFailed && dps.Attempts >= 2 && strings.Contains(dps.LastError, "503") &&
			strings.Contains(hub.Waiting, "dps") && removalOf(dec, "mender").State == gatehouse.StepSucceeded
	})
	if !ok {
		t.Fatalf("the failing removal is not visible: %+v", dec)
	}
	// DPS still holds the enrollment, so the hub device must stay until it
	// is gone: the gateway could otherwise register into the hub again.
	if len(tb.hub.Devices(hubA)) != 2 {
		t.Error("the hub device was removed before the DPS enrollment")
	}
	assertEvents(t, tb, id, "removal_failed")
	_, err := tb.svc.Forget(ctx, "op", id)
	wantRefusal(t, err, gatehouse.ECONFLICT, "still being removed from dps")

	// An operator may ask for the next attempt now; it fails again, visibly.
	if _, err := tb.svc.Retry(ctx, "op", id); err != nil {
		t.Fatalf("retry of the failing removal: %v", err)
	}
	tb.dps.FailNext(0, nil)
	dec = waitRemoved(t, tb.svc, id)
	_, err = tb.svc.Retry(ctx, "op", id)
	wantRefusal(t, err, gatehouse.ECONFLICT, "nothing to retry")
	if r := removalOf(dec, "dps"); r.LastError != "" || !slices.Equal(results(r), []string{"enrollment gw-a: removed", "registration state gw-a: already gone"}) {
		t.Errorf("dps after recovery: %+v", r)
	}
	if h := holdingsOf(t, tb, "gw-a", ""); h != (holdings{}) {
		t.Errorf("gw-a still held: %+v", h)
	}
}

// TestDecommissionStopsARunningStep decommissions while the PKI is issuing
// the gateway's certificate: the step finishes, the device stays
// decommissioned, and the vault removal waits for it and then revokes
// what it issued.
func TestDecommissionStopsARunningStep(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.mender.SetInventoryDelay(0)
	pkiGate := newGate(true)
	cfg := fastConfig(tb.backends())
	cfg.Backends.PKI = gatedPKI{PKI: tb.pki, gate: pkiGate}
	// The step is held at the gate until the removal has been seen
	// waiting for it, which on a loaded machine can outlast fastConfig's
	// 5 s step timeout; a timed-out step would never issue.
	cfg.JobTimeout, cfg.RescueAfter = 2*time.Minute, 3*time.Minute
	svc := startService(t, openDB(t, filepath.Join(t.TempDir(), "running.db")), cfg)
	g := newGateway(t)
	ctx := context.Background()
	st, err := svc.Enroll(ctx, g.sig, enrollReq(t, g), "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "op", st.DeviceID, provision.Approval{Name: "gw-run"}); err != nil {
		t.Fatal(err)
	}
	if !eventually(waitTimeout, func() bool { return pkiGate.entered.Load() > 0 }) {
		t.Fatal("the vault step never called the PKI")
	}
	if _, err := svc.Decommission(ctx, "op", st.DeviceID, false); err != nil {
		t.Fatal(err)
	}
	ok := eventually(waitTimeout, func() bool {
		d, _ := svc.Device(ctx, st.DeviceID)
		return strings.Contains(removalOf(d.Decommission, "vault").Waiting, "running vault step")
	})
	if !ok {
		t.Fatal("the vault removal did not wait for the running step")
	}
	pkiGate.Open()
	waitRemoved(t, svc, st.DeviceID)
	d, _ := svc.Device(ctx, st.DeviceID)
	if d.State != gatehouse.StateDecommissioned {
		t.Fatalf("state %s after the running step finished", d.State)
	}
	if live := tb.pki.Live(); len(live) != 0 || tb.pki.Len() != 1 {
		t.Errorf("certificates: %d issued, %d valid; want the one issued, revoked", tb.pki.Len(), len(live))
	}
	if tb.mender.Len() != 0 || tb.dps.Len() != 0 {
		t.Errorf("mender %d, dps %d left", tb.mender.Len(), tb.dps.Len())
	}
}

func TestDecommissionUnprovisionedJustMoves(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	pending, dismissed := newGateway(t), newGateway(t)
	pid, did := tb.enroll(t, pending).DeviceID, tb.enroll(t, dismissed).DeviceID
	if _, err := tb.svc.Dismiss(ctx, "op", did); err != nil {
		t.Fatal(err)
	}
	calls := tb.mender.Calls() + tb.dps.Calls() + tb.hub.Calls() + tb.pki.Calls()
	for _, id := range []string{pid, did} {
		dec, err := tb.svc.Decommission(ctx, "op", id, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(dec.Backends) != 0 || !dec.Done() {
			t.Errorf("decommission of an unprovisioned device = %+v", dec)
		}
		d, _ := tb.svc.Device(ctx, id)
		if d.State != gatehouse.StateDecommissioned {
			t.Errorf("state %s", d.State)
		}
	}
	if got := tb.mender.Calls() + tb.dps.Calls() + tb.hub.Calls() + tb.pki.Calls(); got != calls {
		t.Errorf("backends were called %d times for devices never provisioned", got-calls)
	}
	_, err := tb.svc.Enroll(ctx, pending.sig, enrollReq(t, pending), "x")
	wantRefusal(t, err, gatehouse.EGONE, "decommissioned by op")
	_, err = tb.svc.Decommission(ctx, "op", "no-such-device", false)
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func TestForgetThenEnrollAgain(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	g := newGateway(t)
	old := tb.enroll(t, g).DeviceID
	_, err := tb.svc.Forget(ctx, "op", old)
	wantRefusal(t, err, gatehouse.ECONFLICT, "only dismissed or decommissioned")
	if _, err := tb.svc.Dismiss(ctx, "op", old); err != nil {
		t.Fatal(err)
	}
	f, err := tb.svc.Forget(ctx, "token:alice", old)
	if err != nil {
		t.Fatal(err)
	}
	if f.DeviceID != old || f.Fingerprint != g.sig.Fingerprint || f.State != gatehouse.StateDismissed || f.By != "token:alice" {
		t.Fatalf("forgotten = %+v", f)
	}
	_, err = tb.svc.Device(ctx, old)
	wantRefusal(t, err, gatehouse.ENOTFOUND, "was forgotten by token:alice")
	again, err := tb.svc.Forget(ctx, "token:alice", old)
	if err != nil || again.At != f.At {
		t.Fatalf("forgetting again: %+v, %v", again, err)
	}

	st := tb.enroll(t, g)
	if st.DeviceID == old || st.State != string(gatehouse.StatePending) {
		t.Fatalf("re-enrollment = %+v; want a new pending device", st)
	}
	newEvents, _ := tb.svc.Events(ctx, st.DeviceID)
	if !hasEvent(newEvents, "forgotten_before", "this key was forgotten as device "+old+" by token:alice") {
		t.Errorf("the new device's timeline does not say its key was forgotten: %+v", newEvents)
	}
	oldEvents, err := tb.svc.Events(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if !hasEvent(oldEvents, "forgotten", "") || !hasEvent(oldEvents, "enrolled_again", st.DeviceID) {
		t.Errorf("the old timeline lacks the forget or the new enrollment: %+v", oldEvents)
	}
	if entries := only(t, auditLog(t, tb.svc), provision.ActionDeviceForget, 3); entries[0].Result == "ok" || entries[1].Result != "ok" ||
		!strings.Contains(entries[2].Detail, "already forgotten") {
		t.Errorf("forget audit entries: %+v", entries)
	}
}

func TestForgetDecommissionedGateway(t *testing.T) {
	t.Parallel()
	tb, gws, ids := configuredPair(t)
	ctx := context.Background()
	id := ids["gw-a"]
	_, err := tb.svc.Forget(ctx, "op", id)
	wantRefusal(t, err, gatehouse.ECONFLICT, "is configured")
	if _, err := tb.svc.Decommission(ctx, "op", id, false); err != nil {
		t.Fatal(err)
	}
	waitRemoved(t, tb.svc, id)
	if _, err := tb.svc.Forget(ctx, "op", id); err != nil {
		t.Fatal(err)
	}
	// The name is free again, and the key enrolls as a stranger.
	st := tb.enroll(t, gws["gw-a"])
	if st.DeviceID == id || st.State != "pending" {
		t.Fatalf("after forget: %+v", st)
	}
	if _, err := tb.svc.Approve(ctx, "op", st.DeviceID, provision.Approval{Name: "gw-a"}); err != nil {
		t.Fatalf("approving the forgotten gateway's name again: %v", err)
	}
	tb.waitFor(t, gws["gw-a"], gatehouse.StateProvisioned)
}

func hasEvent(evs []gatehouse.Event, kind, fragment string) bool {
	return slices.ContainsFunc(evs, func(e gatehouse.Event) bool { return e.Kind == kind && strings.Contains(e.Detail, fragment) })
}

func enrollReq(t *testing.T, g *gateway) protocol.EnrollRequest {
	t.Helper()
	return protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t)}
}

func keptCerts(t *testing.T, tb *testBundle, id string) []gatehouse.DeviceCert {
	t.Helper()
	var out []gatehouse.DeviceCert
	ctx := context.Background()
	err := tb.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.Certificates(ctx, id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpDB renders every gatehouse table and the decommission jobs. River's
// own bookkeeping (leader election, periodic maintenance) is left out: it
// moves on its own.
func dumpDB(t *testing.T, db *store.DB) string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.SQL().QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'river_%' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, table := range tables {
		fmt.Fprintf(&b, "[%s]", table)
		dumpRows(t, db, &b, `SELECT * FROM `+table)
	}
	b.WriteString("[jobs]")
	dumpRows(t, db, &b, `SELECT id, kind, args FROM river_job WHERE kind IN ('decommission_backend', 'provision_step', 'follow_hub') ORDER BY id`)
	return b.String()
}

func dumpRows(t *testing.T, db *store.DB, b *strings.Builder, q string) {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	defer func() {
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, ";"))
	}()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprint(vals...))
	}
}

// simState renders what the four simulators hold.
func simState(t *testing.T, tb *testBundle) string {
	t.Helper()
	var b strings.Builder
	for _, d := range tb.mender.Devices() {
		fmt.Fprintf(&b, "mender %s %s %d;", d.ID, d.Status, len(d.AuthSets))
	}
	for _, e := range tb.dps.Enrollments() {
		r, err := tb.dps.Registration(context.Background(), e.RegistrationID)
		fmt.Fprintf(&b, "dps %s %s %v %v;", e.RegistrationID, e.ETag, r, err)
	}
	for _, h := range tb.hub.Hubs() {
		for _, d := range tb.hub.Devices(h) {
			fmt.Fprintf(&b, "hub %s %+v;", h, d)
		}
	}
	fmt.Fprintf(&b, "pki %d live %d revoked %v", tb.pki.Len(), len(tb.pki.Live()), tb.pki.Revoked())
	return b.String()
}
