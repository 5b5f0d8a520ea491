package provision_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/azure"
	"gatehouse/provision"
	"gatehouse/simulate"
)

// bulkFleet is a service over simulated backends whose DPS is reached over
// HTTP, throttled by a quota, with n pending gateways.
type bulkFleet struct {
	*testBundle
	quota *simulate.Quota
	cfg   testConfig
	path  string
	ids   []string
}

// newBulkFleet starts a fleet. The DPS quota is limit operations per
// window, and the DPS client is told the same, as an operator would
// configure it for their DPS unit.
func newBulkFleet(t *testing.T, n, limit int, window time.Duration) *bulkFleet {
	t.Helper()
	tb := setup(t)
	tb.mender.SetInventoryDelay(0) // not under test here
	f := &bulkFleet{testBundle: tb, quota: simulate.NewQuota(limit, window)}
	srv, err := simulate.NewDPSServer(simulate.DPSServerOptions{State: tb.dps, Quota: f.quota})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dcfg := srv.Config()
	dcfg.RateLimit, dcfg.RateWindow = limit, window
	// A throttled call would be retried by the client; the test wants to
	// see none, so a retry must not hide one.
	dps, err := azure.NewDPS(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = fastConfig(apis{Mender: tb.mender, DPS: dps, PKI: tb.pki})
	f.cfg.JobTimeout, f.cfg.RescueAfter = 20*time.Second, 30*time.Second
	// Idle job pollers share the one database connection with the work.
	f.cfg.PollInterval = 100 * time.Millisecond
	f.path = filepath.Join(t.TempDir(), "bulk.db")
	f.db = openDB(t, f.path)
	f.svc = startService(t, f.db, f.cfg)
	for range n {
		f.ids = append(f.ids, tb.enroll(t, newGateway(t)).DeviceID)
	}
	return f
}

// waitBulk polls the operation until it is finished, failing if it makes
// no progress for a while: a deadline per item, not one for the whole run.
func waitBulk(t *testing.T, svc *provision.Service, id string) *gatehouse.BulkOperation {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, stuck := -1, time.Now()
	for range tick.C {
		op, err := svc.Bulk(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if op.Finished() && op.FinishedAt != nil {
			return op
		}
		if n := op.Done + op.Failed; n != last {
			last, stuck = n, time.Now()
		} else if time.Since(stuck) > 30*time.Second {
			t.Fatalf("bulk operation stuck at %d of %d for 30 s", n, op.Total)
		}
	}
	return nil
}

// waitProvisioned waits until n devices are provisioned, failing if none
// advances for a while.
func waitProvisioned(t *testing.T, svc *provision.Service, n int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, stuck := -1, time.Now()
	for range tick.C {
		l, err := svc.ListDevices(context.Background(), provision.ListFilter{State: gatehouse.StateProvisioned, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if l.Total >= n {
			return
		}
		if l.Total != last {
			last, stuck = l.Total, time.Now()
		} else if time.Since(stuck) > 30*time.Second {
			t.Fatalf("provisioning stuck at %d of %d for 30 s", l.Total, n)
		}
	}
}

// TestBulkApprovalPacedUnderDPSQuota approves a fleet in one bulk
// operation against a DPS that throttles past its operations quota
// (reference/external-apis.md §2.6: 1,000/min/service, 429 past it). The
// quota is scaled to a window of five seconds so it binds within the test: the
// DPS client's limiter must keep every window at or under it, so DPS
// answers no 429 at all, and every gateway ends provisioned with its name.
// The 1,000-gateway run is BenchmarkBulkApprove1000 in bench/ (half a
// minute); this test approves 200, 20 under -race, to stay quick.
func TestBulkApprovalPacedUnderDPSQuota(t *testing.T) {
	t.Parallel()
	n := 200
	if raceEnabled || testing.Short() {
		// The race detector slows the pure-Go SQLite some fifty times:
		// too slow to reach the quota, so this run only checks that
		// nothing is throttled. The run without it is the one that binds.
		n = 20
	}
	// Unthrottled, this service makes about 100 DPS calls a second here,
	// so a quota of 60 a second binds.
	const limit, window = 300, 5 * time.Second
	f := newBulkFleet(t, n, limit, window)
	ctx := from("user:alice", "192.0.2.9", "req-bulk")
	start := 1
	op, err := f.svc.StartBulk(ctx, "user:alice", provision.BulkRequest{Action: gatehouse.BulkApprove, IDs: f.ids,
		Pattern: "site-a-{n:04}", Start: &start})
	if err != nil {
		t.Fatal(err)
	}
	if op.Total != n {
		t.Fatalf("total = %d, want %d", op.Total, n)
	}
	began := time.Now()
	done := waitBulk(t, f.svc, op.ID)
	if done.Done != n || done.Failed != 0 {
		t.Fatalf("bulk finished with %d done, %d failed of %d; want all done", done.Done, done.Failed, n)
	}
	t.Logf("bulk done after %v", time.Since(began))
	waitProvisioned(t, f.svc, n)
	took := time.Since(began)
	st := f.quota.Stats()
	t.Logf("%d gateways approved and provisioned in %v; DPS saw %d operations, at most %d in one %v window (quota %d), %d throttled",
		n, took.Round(time.Millisecond), st.Requests, st.MaxPerWindow, window, limit, st.Throttled)
	if st.Throttled != 0 {
		t.Errorf("DPS answered %d requests with 429; the client must keep under the quota", st.Throttled)
	}
	if st.MaxPerWindow > limit {
		t.Errorf("DPS saw %d operations within one %v window; quota %d", st.MaxPerWindow, window, limit)
	}
	if f.dps.Len() != n {
		t.Errorf("DPS holds %d enrollments, want %d", f.dps.Len(), n)
	}
	for i, it := range done.Items {
		if want := fmt.Sprintf("site-a-%04d", i+1); it.Name != want || it.DeviceID != f.ids[i] || it.State != gatehouse.BulkDone {
			t.Fatalf("item %d = %+v, want %s for %s, done", i+1, it, want, f.ids[i])
		}
	}
	// Every approval is audited once, as the operator's, with where they
	// asked from.
	approvals := okEntries(t, f.svc, provision.ActionDeviceApprove)
	if len(approvals) != n {
		t.Fatalf("%d approvals audited, want %d", len(approvals), n)
	}
	for _, e := range approvals {
		if e.Actor != "user:alice" || e.Source != "192.0.2.9" || e.RequestID != "req-bulk" {
			t.Fatalf("approval audited as %q from %q (%q), want the bulk's starter", e.Actor, e.Source, e.RequestID)
		}
	}
	only(t, auditLog(t, f.svc), provision.ActionBulkStart, 1)
}

// TestBulkResumesAfterRestart stops the service in the middle of a bulk
// approval, the way a restart does, and starts another on the same
// database: it finishes the rest, and no gateway is approved twice.
func TestBulkResumesAfterRestart(t *testing.T) {
	t.Parallel()
	// Outcomes are recorded a batch at a time, so the bulk must span more
	// than one batch, and DPS's quota (10 a second) keeps the second batch
	// running for most of a second after the first is recorded.
	n := 40
	f := newBulkFleet(t, n, 10, time.Second)
	op, err := f.svc.StartBulk(context.Background(), "user:bob", provision.BulkRequest{Action: gatehouse.BulkApprove,
		IDs: f.ids, Pattern: "gw-{n}"})
	if err != nil {
		t.Fatal(err)
	}
	waitItems(t, f.svc, op.ID, n/4)
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := f.svc.StopAndCancel(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	cancel()
	mid, err := f.svc.Bulk(context.Background(), op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Finished() {
		t.Fatalf("the bulk finished before the restart (%d done); the test must cut it mid-way", mid.Done)
	}
	b := startService(t, f.db, f.cfg)
	done := waitBulk(t, b, op.ID)
	if done.Done != n || done.Failed != 0 {
		t.Fatalf("after restart: %d done, %d failed of %d (%d were done before)", done.Done, done.Failed, n, mid.Done)
	}
	waitProvisioned(t, b, n)
	t.Logf("%d of %d were done when the service stopped", mid.Done, n)
	// One approval each, none twice. Approvals cut off by the stop are
	// audited as failed, and were retried.
	approvals := okEntries(t, b, provision.ActionDeviceApprove)
	seen := map[string]bool{}
	for _, e := range approvals {
		if seen[e.Target] {
			t.Errorf("device %s approved twice", e.Target)
		}
		seen[e.Target] = true
	}
	if len(approvals) != n {
		t.Errorf("%d approvals audited, want %d", len(approvals), n)
	}
	for i, id := range f.ids {
		evs, err := b.Events(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		approved := 0
		for _, e := range evs {
			if e.Kind == "approved" {
				approved++
			}
		}
		d, _ := b.Device(context.Background(), id)
		if approved != 1 || d.Name != fmt.Sprintf("gw-%d", i+1) {
			t.Errorf("device %s: %d approved events, name %q; want 1 and gw-%d", id, approved, d.Name, i+1)
		}
	}
	if f.dps.Len() != n || f.mender.Len() != n {
		t.Errorf("backends hold dps %d, mender %d objects; want %d each", f.dps.Len(), f.mender.Len(), n)
	}
}

// okEntries are the audit entries of action that succeeded.
func okEntries(t *testing.T, svc *provision.Service, action string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for after := int64(0); ; {
		page, err := svc.AuditLog(context.Background(), provision.AuditQuery{Forward: true, After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			if e.Action == action && e.Result == "ok" {
				out = append(out, e)
			}
		}
		if len(page.Entries) == 0 || page.NextAfter == 0 {
			return out
		}
		after = page.NextAfter
	}
}

// waitItems waits until at least n items have their result, failing if
// none finishes for a while.
func waitItems(t *testing.T, svc *provision.Service, id string, n int) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	last, stuck := -1, time.Now()
	for range tick.C {
		op, err := svc.Bulk(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		got := op.Done + op.Failed
		if got >= n {
			return
		}
		if got != last {
			last, stuck = got, time.Now()
		} else if time.Since(stuck) > 30*time.Second {
			t.Fatalf("stuck at %d finished items for 30 s, want %d", got, n)
		}
	}
}

// TestBulkItemErrorsAreRecorded: an item whose gateway is no longer
// pending, or whose name a backend holds, fails alone with its reason; an
// item already approved under its name by an interrupted run counts as
// done without a second approval; the rest are approved.
func TestBulkItemErrorsAreRecorded(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.mender.SetInventoryDelay(0)
	var ids []string
	for range 5 {
		ids = append(ids, tb.enroll(t, newGateway(t)).DeviceID)
	}
	ctx := context.Background()
	// Taken in DPS by something gatehouse did not make.
	if _, err := tb.dps.CreateEnrollment(ctx, gatehouse.Enrollment{RegistrationID: "gw-b", DeviceID: "gw-b",
		PrimaryKey: "c2ltdWxhdGVkLXByaW1hcnkta2V5", SecondaryKey: "c2ltdWxhdGVkLXNlY29uZGFyeS1rZXk="}); err != nil {
		t.Fatal(err)
	}
	items := []provision.BulkTarget{{ID: ids[0], Name: "gw-a"}, {ID: ids[1], Name: "gw-b"}, {ID: ids[2], Name: "gw-c"},
		{ID: ids[3], Name: "gw-d"}, {ID: ids[4], Name: "gw-e", Labels: map[string]string{"group": "edge"}}}
	// Planned while all are pending; by the time the job runs one was
	// dismissed and one approved under its name already.
	plan, err := tb.svc.PlanBulk(ctx, provision.BulkRequest{Action: gatehouse.BulkApprove, Items: items})
	if err != nil || len(plan.Problems) != 0 {
		t.Fatalf("plan: %v %+v", err, plan)
	}
	if _, err := tb.svc.Approve(ctx, "user:carol", ids[3], provision.Approval{Name: "gw-d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.svc.Dismiss(ctx, "user:carol", ids[2]); err != nil {
		t.Fatal(err)
	}
	op, err := tb.svc.StartBulk(ctx, "user:carol", provision.BulkRequest{Action: gatehouse.BulkApprove, Items: items})
	if err != nil {
		t.Fatal(err)
	}
	done := waitBulk(t, tb.svc, op.ID)
	want := []struct{ state, result string }{
		{gatehouse.BulkDone, "approved as gw-a"},
		{gatehouse.BulkFailed, `name "gw-b" is already taken in dps`},
		{gatehouse.BulkFailed, "dismissed, not pending"},
		{gatehouse.BulkDone, "approved as gw-d"},
		{gatehouse.BulkDone, "approved as gw-e"},
	}
	for i, w := range want {
		it := done.Items[i]
		if it.State != w.state || !strings.Contains(it.Result, w.result) {
			t.Errorf("item %d: %s %q, want %s containing %q", i+1, it.State, it.Result, w.state, w.result)
		}
	}
	if done.Done != 3 || done.Failed != 2 {
		t.Errorf("done %d failed %d, want 3 and 2", done.Done, done.Failed)
	}
	// gw-d's earlier approval and two of the bulk's; gw-d is not approved again.
	if ok := len(okEntries(t, tb.svc, provision.ActionDeviceApprove)); ok != 3 {
		t.Errorf("%d approvals succeeded in the audit log, want 3 (gw-d only once)", ok)
	}
	d, _ := tb.svc.Device(ctx, ids[4])
	if d.Labels["group"] != "edge" {
		t.Errorf("labels = %v, want the item's", d.Labels)
	}
}

func TestBulkDismiss(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	var ids []string
	for range 3 {
		ids = append(ids, tb.enroll(t, newGateway(t)).DeviceID)
	}
	op, err := tb.svc.StartBulk(context.Background(), "user:dan", provision.BulkRequest{Action: gatehouse.BulkDismiss, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	done := waitBulk(t, tb.svc, op.ID)
	if done.Done != 3 {
		t.Fatalf("done = %d, want 3: %+v", done.Done, done.Items)
	}
	for _, id := range ids {
		if d, _ := tb.svc.Device(context.Background(), id); d.State != gatehouse.StateDismissed {
			t.Errorf("%s is %s, want dismissed", id, d.State)
		}
	}
	es := only(t, auditLog(t, tb.svc), provision.ActionDeviceDismiss, 3)
	if es[0].Actor != "user:dan" {
		t.Errorf("dismissal audited as %q, want the bulk's starter", es[0].Actor)
	}
}

func TestExpandPattern(t *testing.T) {
	for _, c := range []struct {
		pattern string
		start   int
		want    []string
	}{
		{"site-a-{n:03}", 1, []string{"site-a-001", "site-a-002", "site-a-003"}},
		{"gw{n}", 9, []string{"gw9", "gw10", "gw11"}},
		{"{n:02}-edge", 0, []string{"00-edge", "01-edge", "02-edge"}},
		{"x-{n:03}", 999, []string{"x-999", "x-1000", "x-1001"}},
	} {
		got, err := provision.ExpandPattern(c.pattern, c.start, 3)
		if err != nil || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ExpandPattern(%q, %d) = %v, %v; want %v", c.pattern, c.start, got, err, c.want)
		}
	}
	for _, c := range []struct{ pattern, fragment string }{
		{"site-a", "exactly one"},
		{"a-{n}-{n}", "exactly one"},
		{"a-{n:3}", "exactly one"},
		{"a-{x}-{n}", "brace outside"},
		{"a-{n:03", "exactly one"},
		{"a-{n}}", "brace outside"},
	} {
		_, err := provision.ExpandPattern(c.pattern, 1, 2)
		if gatehouse.ErrorCode(err) != gatehouse.EINVALID || !strings.Contains(gatehouse.ErrorMessage(err), c.fragment) {
			t.Errorf("ExpandPattern(%q) = %v, want invalid mentioning %q", c.pattern, err, c.fragment)
		}
	}
	if _, err := provision.ExpandPattern("a-{n}", -1, 2); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
		t.Errorf("negative start: %v, want invalid", err)
	}
}

// TestBulkRefusesBadRequestsWhole: one invalid or repeated name, unknown
// gateway or ambiguous MAC refuses the whole request, naming each item,
// and starts nothing.
func TestBulkRefusesBadRequestsWhole(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	g1, g2 := newGateway(t), newGateway(t)
	id1, id2 := tb.enroll(t, g1).DeviceID, tb.enroll(t, g2).DeviceID
	taken := tb.enroll(t, newGateway(t)).DeviceID
	if _, err := tb.svc.Approve(ctx, "op", taken, provision.Approval{Name: "gw-taken"}); err != nil {
		t.Fatal(err)
	}
	same := newGateway(t)
	same.mac = g2.mac
	tb.enroll(t, same) // two pending gateways now claim g2's MAC
	cases := []struct {
		name string
		req  provision.BulkRequest
		want []string
	}{
		{"bad name", provision.BulkRequest{Action: "approve", Items: []provision.BulkTarget{{ID: id1, Name: "Bad_Name"}, {ID: id2, Name: "ok-2"}}},
			[]string{"item 1:"}},
		{"repeated name", provision.BulkRequest{Action: "approve", Items: []provision.BulkTarget{{ID: id1, Name: "gw-x"}, {ID: id2, Name: "gw-x"}}},
			[]string{`item 2: name "gw-x" is also item 1`}},
		{"taken name", provision.BulkRequest{Action: "approve", Items: []provision.BulkTarget{{ID: id1, Name: "gw-taken"}}},
			[]string{`item 1: name "gw-taken" is already taken in gatehouse by another gateway (MAC `, "device id " + taken + ")"}},
		{"unknown", provision.BulkRequest{Action: "approve", Items: []provision.BulkTarget{{ID: "nosuch", Name: "a"}, {MAC: "02:00:00:ff:ff:ff", Name: "b"}}},
			[]string{`item 1: no gateway has id "nosuch"`, "item 2: no gateway has MAC 02:00:00:ff:ff:ff"}},
		{"ambiguous mac", provision.BulkRequest{Action: "approve", Items: []provision.BulkTarget{{MAC: g2.mac, Name: "b"}}},
			[]string{"item 1: 2 pending gateways claim MAC"}},
		{"same gateway twice", provision.BulkRequest{Action: "approve", Items: []provision.BulkTarget{{ID: id1, Name: "a"}, {MAC: g1.mac, Name: "b"}}},
			[]string{"item 2: gateway " + id1 + " is also item 1"}},
		{"pattern name too long", provision.BulkRequest{Action: "approve", IDs: []string{id1}, Pattern: strings.Repeat("a", 70) + "{n}"},
			[]string{"item 1:"}},
		{"negative start", provision.BulkRequest{Action: "approve", IDs: []string{id1, id2}, Pattern: "gw-{n}", Start: ptr(-3)},
			[]string{"start must be"}},
		{"no pattern", provision.BulkRequest{Action: "approve", IDs: []string{id1}}, []string{"needs a name pattern"}},
		{"bad action", provision.BulkRequest{Action: "delete", IDs: []string{id1}}, []string{"action must be"}},
		{"both", provision.BulkRequest{Action: "dismiss", IDs: []string{id1}, Items: []provision.BulkTarget{{ID: id2}}}, []string{"either items or ids"}},
		{"dismiss with a name", provision.BulkRequest{Action: "dismiss", Items: []provision.BulkTarget{{ID: id2, Name: "x"}}}, []string{"item 1: a dismissal takes no name"}},
	}
	for _, c := range cases {
		_, err := tb.svc.StartBulk(ctx, "op", c.req)
		if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("%s: err = %v, want invalid", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(gatehouse.ErrorMessage(err), w) {
				t.Errorf("%s: %q does not say %q", c.name, gatehouse.ErrorMessage(err), w)
			}
		}
	}
	for _, id := range []string{id1, id2} {
		if d, _ := tb.svc.Device(ctx, id); d.State != gatehouse.StatePending {
			t.Errorf("%s is %s after refused requests, want pending", id, d.State)
		}
	}
	var bulks int
	if err := tb.db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM bulk_operations`).Scan(&bulks); err != nil {
		t.Fatal(err)
	}
	if bulks != 0 {
		t.Errorf("%d bulk operations stored after refusals, want none", bulks)
	}
	refused := only(t, auditLog(t, tb.svc), provision.ActionBulkStart, len(cases))
	if !strings.HasPrefix(refused[0].Result, "refused: ") {
		t.Errorf("refused bulk audited as %q", refused[0].Result)
	}
}

// TestBulkPlanPreviewsNames: a dry run lists each gateway with its name
// and changes nothing.
func TestBulkPlanPreviewsNames(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	g := newGateway(t)
	ids := []string{tb.enroll(t, g).DeviceID, tb.enroll(t, newGateway(t)).DeviceID}
	plan, err := tb.svc.PlanBulk(ctx, provision.BulkRequest{Action: "approve", IDs: ids, Pattern: "site-b-{n:02}", Start: ptr(7)})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Problems) != 0 || plan.Items[0].Name != "site-b-07" || plan.Items[1].Name != "site-b-08" ||
		plan.Items[0].MAC != g.mac || plan.Items[0].DeviceState != gatehouse.StatePending {
		t.Fatalf("plan = %+v", plan)
	}
	plan, err = tb.svc.PlanBulk(ctx, provision.BulkRequest{Action: "approve", IDs: ids, Pattern: "Site-{n}"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Problems) != 2 || plan.Problems[1].Item != 2 {
		t.Fatalf("problems = %+v, want one per item", plan.Problems)
	}
	if d, _ := tb.svc.Device(ctx, ids[0]); d.State != gatehouse.StatePending {
		t.Errorf("a dry run changed the gateway to %s", d.State)
	}
}

func ptr[T any](v T) *T { return &v }
