package provision_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/provision"
)

// from is a request's origin, as the server sets it.
func from(actor, source, requestID string) context.Context {
	return gatehouse.WithOrigin(context.Background(), gatehouse.Origin{Actor: actor, Source: source, RequestID: requestID})
}

// auditLog returns the whole log, oldest first, after checking its chain.
func auditLog(t *testing.T, svc *provision.Service) []audit.Entry {
	t.Helper()
	page, err := svc.AuditLog(context.Background(), provision.AuditQuery{Forward: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seq := func(yield func(audit.Entry, error) bool) {
		for _, e := range page.Entries {
			if !yield(e, nil) {
				return
			}
		}
	}
	if _, err := audit.Verify(seq, audit.Head{}); err != nil {
		t.Fatalf("the service wrote a broken chain: %v", err)
	}
	return page.Entries
}

// only returns the entries of one action, failing unless there are n.
func only(t *testing.T, es []audit.Entry, action string, n int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for _, e := range es {
		if e.Action == action {
			out = append(out, e)
		}
	}
	if len(out) != n {
		t.Fatalf("%d %s entries, want %d: %+v", len(out), action, n, es)
	}
	return out
}

func detailOf(t *testing.T, e audit.Entry) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(e.Detail), &m); err != nil {
		t.Fatalf("entry %d detail %q: %v", e.Seq, e.Detail, err)
	}
	return m
}

func wantEntry(t *testing.T, e audit.Entry, actor, source, requestID, target, result string) {
	t.Helper()
	if e.Actor != actor || e.Source != source || e.RequestID != requestID || e.Target != target || e.Result != result {
		t.Errorf("%s entry: actor %q source %q request %q target %q result %q; want %q %q %q %q %q", e.Action,
			e.Actor, e.Source, e.RequestID, e.Target, e.Result, actor, source, requestID, target, result)
	}
}

// TestAuditDecisions: approve, dismiss and retry each leave one entry with
// who, from where and on what.
func TestAuditDecisions(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	flaky := newGate(false)
	flaky.fails.Store(1)
	cfg := fastConfig(tb.backends())
	cfg.RetryBase, cfg.RetryMax = time.Hour, time.Hour // only an operator's retry can help
	cfg.Backends.PKI = gatedPKI{PKI: tb.pki, gate: flaky}
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "a.db")), cfg)
	a, b := newGateway(t), newGateway(t)
	ida, idb := tb.enroll(t, a).DeviceID, tb.enroll(t, b).DeviceID

	if _, err := tb.svc.Approve(from("session:alice", "192.0.2.10", "req-1"), "session:alice", ida,
		provision.Approval{Name: "gw-a", Labels: map[string]string{"group": "north"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.svc.Dismiss(from("token:ci", "192.0.2.11", "req-2"), "token:ci", idb); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, a, gatehouse.StateFailed)
	if _, err := tb.svc.Retry(from("token:bob", "192.0.2.12", "req-3"), "token:bob", ida); err != nil {
		t.Fatal(err)
	}

	es := auditLog(t, tb.svc)
	if len(es) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(es), es)
	}
	approve := only(t, es, provision.ActionDeviceApprove, 1)[0]
	wantEntry(t, approve, "session:alice", "192.0.2.10", "req-1", ida, "ok")
	d := detailOf(t, approve)
	if d["name"] != "gw-a" || d["fingerprint"] != a.sig.Fingerprint || d["labels"].(map[string]any)["group"] != "north" {
		t.Errorf("approve detail %s", approve.Detail)
	}
	dismiss := only(t, es, provision.ActionDeviceDismiss, 1)[0]
	wantEntry(t, dismiss, "token:ci", "192.0.2.11", "req-2", idb, "ok")
	retry := only(t, es, provision.ActionDeviceRetry, 1)[0]
	wantEntry(t, retry, "token:bob", "192.0.2.12", "req-3", ida, "ok")
	if detailOf(t, retry)["state"] != "failed" {
		t.Errorf("retry detail %s", retry.Detail)
	}
}

// TestAuditActorWithoutOrigin: a caller with no request (a test, a local
// command) still names its actor.
func TestAuditActorWithoutOrigin(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	id := tb.enroll(t, newGateway(t)).DeviceID
	if _, err := tb.svc.Dismiss(context.Background(), "local:test", id); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, auditLog(t, tb.svc)[0], "local:test", "", "", id, "ok")
}

// TestAuditRefusedDecisions: a refused decision leaves a "refused" entry
// of its own and changes nothing.
func TestAuditRefusedDecisions(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	a, b := newGateway(t), newGateway(t)
	ida, idb := tb.enroll(t, a).DeviceID, tb.enroll(t, b).DeviceID
	ctx := from("session:alice", "192.0.2.10", "req-1")
	if _, err := tb.svc.Approve(ctx, "session:alice", ida, provision.Approval{Name: "gw-a"}); err != nil {
		t.Fatal(err)
	}
	_, err := tb.svc.Approve(ctx, "session:alice", idb, provision.Approval{Name: "gw-a"})
	wantCode(t, err, gatehouse.ECONFLICT)
	_, err = tb.svc.Approve(ctx, "session:alice", idb, provision.Approval{Name: "GW_B"})
	wantCode(t, err, gatehouse.EINVALID)
	_, err = tb.svc.Dismiss(ctx, "session:alice", ida)
	wantCode(t, err, gatehouse.ECONFLICT)
	_, err = tb.svc.Retry(ctx, "session:alice", idb)
	wantCode(t, err, gatehouse.ECONFLICT)
	_, err = tb.svc.Approve(ctx, "session:alice", "nosuchdevice", provision.Approval{Name: "gw-x"})
	wantCode(t, err, gatehouse.ENOTFOUND)

	d, _ := tb.svc.Device(context.Background(), idb)
	if d.State != gatehouse.StatePending || d.Name != "" || len(d.Steps) != 0 {
		t.Errorf("a refused approval changed the device: %+v", d)
	}
	es := auditLog(t, tb.svc)
	approvals := only(t, es, provision.ActionDeviceApprove, 4)
	wantEntry(t, approvals[0], "session:alice", "192.0.2.10", "req-1", ida, "ok")
	taken := approvals[1]
	if taken.Target != idb || !strings.HasPrefix(taken.Result, `refused: name "gw-a" is already taken in gatehouse by another gateway (MAC `) ||
		!strings.Contains(taken.Result, "device id "+ida) ||
		detailOf(t, taken)["name"] != "gw-a" {
		t.Errorf("taken name: %+v", taken)
	}
	if !strings.HasPrefix(approvals[2].Result, "refused: ") || approvals[3].Result != "refused: device nosuchdevice not found" {
		t.Errorf("invalid name and unknown device: %q, %q", approvals[2].Result, approvals[3].Result)
	}
	dismiss := only(t, es, provision.ActionDeviceDismiss, 1)[0]
	if !strings.Contains(dismiss.Result, "only pending devices can be dismissed") || dismiss.Actor != "session:alice" {
		t.Errorf("refused dismiss: %+v", dismiss)
	}
	if r := only(t, es, provision.ActionDeviceRetry, 1)[0]; !strings.HasPrefix(r.Result, "refused: ") {
		t.Errorf("refused retry: %+v", r)
	}
}

// TestApprovalNeedsItsEntry: when the entry cannot be written the decision
// is not taken either.
func TestApprovalNeedsItsEntry(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	id := tb.enroll(t, newGateway(t)).DeviceID
	if _, err := tb.db.SQL().ExecContext(context.Background(), `DROP TABLE audit_log`); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-a"}); err == nil {
		t.Fatal("approved without an audit log")
	}
	if d, _ := tb.svc.Device(context.Background(), id); d.State != gatehouse.StatePending || d.Name != "" {
		t.Errorf("the device changed without its entry: %+v", d)
	}
}

// auditClock is a database clock a test moves by hand.
type auditClock struct{ now atomic.Int64 }

func (c *auditClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *auditClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

func newAuditClock(t time.Time) *auditClock {
	c := &auditClock{}
	c.now.Store(t.UnixNano())
	return c
}

func TestAuditRefusedCredentialsRateLimited(t *testing.T) {
	t.Parallel()
	db := openDB(t, filepath.Join(t.TempDir(), "g.db"))
	clk := newAuditClock(time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC))
	db.Now = clk.Now // before the service starts, so nothing reads it meanwhile
	svc := startService(t, db, fastConfig(apis{}))
	const route = "GET /api/v1/devices"
	refuse := func(source, route string) {
		t.Helper()
		if err := svc.AuditRefusedCredentials(from("", source, "r"), route); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		refuse("192.0.2.1", route)
	}
	refuse("192.0.2.2", route)
	refuse("192.0.2.1", "POST /api/v1/session") // every kind of bad credentials counts in one window
	refuse("192.0.2.1", "POST /device/v1/enroll")
	refuse("192.0.2.4", "POST /api/v1/session")
	clk.Advance(59 * time.Second)
	refuse("192.0.2.1", route)
	clk.Advance(2 * time.Second)
	refuse("192.0.2.1", route)
	// A refused role is counted apart from refused credentials.
	err := svc.AuditAccessDenied(from("token:viewer", "192.0.2.1", "r"), "GET /api/v1/audit",
		gatehouse.Errorf(gatehouse.EFORBIDDEN, "token %q has role viewer; this needs admin", "viewer"))
	if err != nil {
		t.Fatal(err)
	}

	es := auditLog(t, svc)
	creds := only(t, es, provision.ActionCredentialsRefused, 3)
	wantEntry(t, creds[0], "anonymous", "192.0.2.1", "r", route, "refused: missing, invalid or expired credentials")
	if creds[1].Source != "192.0.2.2" || creds[2].Source != "192.0.2.1" {
		t.Errorf("sources %q, %q", creds[1].Source, creds[2].Source)
	}
	for i, want := range []float64{0, 0, 5} {
		if got := detailOf(t, creds[i])["suppressed"]; got != want {
			t.Errorf("entry %d: suppressed %v, want %v", creds[i].Seq, got, want)
		}
	}
	wantEntry(t, only(t, es, provision.ActionLoginRefused, 1)[0], "anonymous", "192.0.2.4", "r", "POST /api/v1/session",
		"refused: wrong user name, password or API token")
	denied := only(t, es, provision.ActionAccessDenied, 1)[0]
	wantEntry(t, denied, "token:viewer", "192.0.2.1", "r", "GET /api/v1/audit", `refused: token "viewer" has role viewer; this needs admin`)
}

func TestAuditDetailKeepsSecretsOut(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := from("token:admin", "192.0.2.1", "r")
	for _, detail := range []map[string]any{
		{"secret": "x"},
		{"Password": "x"},
		{"token": "x"},
		{"nested": map[string]any{"private_key": "x"}},
		{"value": "gat_abcdefghijklmnop"},
		{"list": []string{"ok", "gat_abcdefghijklmnop"}},
	} {
		if err := tb.svc.Audit(ctx, "token.create", "ci", nil, detail); err == nil {
			t.Errorf("detail %v was recorded", detail)
		}
	}
	if err := tb.svc.Audit(ctx, "Token Create", "ci", nil, nil); err == nil {
		t.Error("an action that is not noun.verb was recorded")
	}
	if es := auditLog(t, tb.svc); len(es) != 0 {
		t.Fatalf("refused entries were written: %+v", es)
	}
	if err := tb.svc.Audit(ctx, "token.create", "ci", nil, map[string]any{"role": "admin", "token_name": "ci"}); err != nil {
		t.Fatal(err)
	}
	if e := auditLog(t, tb.svc)[0]; e.Result != "ok" || e.Detail != `{"role":"admin","token_name":"ci"}` {
		t.Errorf("entry %+v", e)
	}
}

// TestAuditClipsWhatCallersSend: text from a request is bounded and made
// valid UTF-8, so an export reproduces the hash.
func TestAuditClipsWhatCallersSend(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	long := strings.Repeat("é", 5000)
	_, err := tb.svc.Approve(from("session:alice", "192.0.2.1", "r"), "session:alice", "bad\xffid"+long, provision.Approval{Name: long})
	wantCode(t, err, gatehouse.EINVALID)
	e := auditLog(t, tb.svc)[0]
	if len(e.Target) > 256 || !utf8.ValidString(e.Target) || !strings.HasPrefix(e.Target, "bad\uFFFDid") || len(e.Detail) > 400 {
		t.Errorf("target of %d bytes %q, detail of %d bytes", len(e.Target), e.Target[:12], len(e.Detail))
	}
}

func TestAuditLogPaging(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := from("token:admin", "192.0.2.1", "r")
	for range 250 {
		if err := tb.svc.Audit(ctx, "user.create", "u", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	list := func(q provision.AuditQuery) *provision.AuditPage {
		t.Helper()
		p, err := tb.svc.AuditLog(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	var seqs []int64
	before := int64(0)
	for pages := 0; ; pages++ {
		p := list(provision.AuditQuery{Before: before})
		for _, e := range p.Entries {
			seqs = append(seqs, e.Seq)
		}
		if p.NextBefore == 0 {
			if pages != 2 {
				t.Errorf("%d pages of the default 100, want 3", pages+1)
			}
			break
		}
		before = p.NextBefore
	}
	if len(seqs) != 250 || seqs[0] != 250 || seqs[249] != 1 {
		t.Fatalf("newest first: %d entries, %d..%d", len(seqs), seqs[0], seqs[len(seqs)-1])
	}
	fwd := list(provision.AuditQuery{Forward: true, After: 200, Limit: 100})
	if len(fwd.Entries) != 50 || fwd.Entries[0].Seq != 201 || fwd.NextAfter != 250 || fwd.NextBefore != 0 {
		t.Errorf("after 200: %d entries from %d, next_after %d", len(fwd.Entries), fwd.Entries[0].Seq, fwd.NextAfter)
	}
	if end := list(provision.AuditQuery{Forward: true, After: 250}); len(end.Entries) != 0 || end.NextAfter != 250 {
		t.Errorf("after the end: %+v", end)
	}
	if p := list(provision.AuditQuery{Limit: 250}); p.NextBefore != 0 || len(p.Entries) != 250 {
		t.Errorf("a page holding the first entry has next_before %d", p.NextBefore)
	}
	for _, q := range []provision.AuditQuery{{Limit: 1001}, {Limit: -1}, {Before: -1}, {Forward: true, Before: 5}} {
		_, err := tb.svc.AuditLog(context.Background(), q)
		wantCode(t, err, gatehouse.EINVALID)
	}
}
