package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/protocol"
	"gatehouse/provision"
)

type auditPage struct {
	Entries    []audit.Entry `json:"entries"`
	NextBefore int64         `json:"next_before"`
	NextAfter  int64         `json:"next_after"`
}

// auditAs lists the audit log with token, returning the status.
func (tb *testBundle) auditAs(t *testing.T, token, query string, out any) int {
	t.Helper()
	return tb.call(t, token, "GET", "/api/v1/audit"+query, nil, out)
}

// auditEntries lists the entries after setup's, oldest first: making the
// test's tokens is audited too.
func (tb *testBundle) auditEntries(t *testing.T) []audit.Entry {
	t.Helper()
	var p auditPage
	if code := tb.auditAs(t, tb.admin, "?after=0&limit=1000", &p); code != 200 {
		t.Fatalf("audit log: %d", code)
	}
	return withoutTokenCreation(p.Entries)
}

func withoutTokenCreation(es []audit.Entry) []audit.Entry {
	var out []audit.Entry
	for _, e := range es {
		if e.Action != provision.ActionTokenCreate {
			out = append(out, e)
		}
	}
	return out
}

func actions(es []audit.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Action)
	}
	return out
}

func TestAuditRouteIsForAdmins(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	operator, _, err := tb.svc.CreateToken(context.Background(), provision.TokenSpec{Name: "op", Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	var e apiError
	if code := tb.auditAs(t, "", "", &e); code != http.StatusUnauthorized || e.Error.Code != gatehouse.EUNAUTHORIZED {
		t.Errorf("without credentials: %d %q", code, e.Error.Code)
	}
	for name, token := range map[string]string{"viewer": tb.view, "operator": operator} {
		var e apiError
		if code := tb.auditAs(t, token, "", &e); code != http.StatusForbidden || !strings.Contains(e.Error.Message, "needs admin") {
			t.Errorf("%s: %d %+v, want 403", name, code, e)
		}
	}
	var p auditPage
	if code := tb.auditAs(t, tb.admin, "", &p); code != 200 {
		t.Fatalf("admin: %d", code)
	}
	// The two refused roles from one source in a minute leave one entry; a
	// request without credentials refused none.
	p.Entries = withoutTokenCreation(p.Entries)
	if len(p.Entries) != 1 || p.Entries[0].Action != provision.ActionAccessDenied || p.Entries[0].Target != "GET /api/v1/audit" ||
		!strings.HasPrefix(p.Entries[0].Actor, "token:") || p.Entries[0].Source != "127.0.0.1" ||
		!strings.Contains(p.Entries[0].Result, "this needs admin") {
		t.Errorf("entries after refusals: %+v", p.Entries)
	}
}

// TestAuditOverHTTP approves and dismisses through the API and finds who,
// from where and with which request id in the log, with refused
// credentials rate-limited beside them.
func TestAuditOverHTTP(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	a, b := newDevice(t), newDevice(t)
	b.mac = "02:00:00:00:00:02"
	ida, idb := tb.enroll(t, a).DeviceID, tb.enroll(t, b).DeviceID

	req, _ := http.NewRequest("POST", tb.url+"/api/v1/devices/"+ida+"/approve", strings.NewReader(`{"name":"gw-a"}`))
	req.Header.Set("Authorization", "Bearer "+tb.admin)
	req.Header.Set("X-Request-Id", "trace-approve")
	if code := do(t, req, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+idb+"/approve", map[string]string{"name": "gw-a"}, nil); code != 409 {
		t.Fatalf("approve with a taken name: %d", code)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+idb+"/dismiss", nil, nil); code != 200 {
		t.Fatalf("dismiss: %d", code)
	}
	for range 3 {
		tb.call(t, "gat_wrong", "GET", "/api/v1/devices", nil, nil)
	}
	unsigned, _ := http.NewRequest("POST", tb.url+protocol.PathEnroll, strings.NewReader("{}"))
	if code := do(t, unsigned, nil); code != 401 {
		t.Fatalf("unsigned enroll: %d", code)
	}

	es := tb.auditEntries(t)
	want := []string{provision.ActionDeviceApprove, provision.ActionDeviceApprove, provision.ActionDeviceDismiss, provision.ActionCredentialsRefused}
	if got := actions(es); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("actions %v, want %v", got, want)
	}
	if e := es[0]; e.Actor != "token:admin" || e.Source != "127.0.0.1" || e.RequestID != "trace-approve" || e.Target != ida || e.Result != "ok" {
		t.Errorf("approval: %+v", e)
	}
	if e := es[1]; e.Target != idb || !strings.HasPrefix(e.Result, "refused: name \"gw-a\" is already taken") {
		t.Errorf("refused approval: %+v", e)
	}
	if e := es[3]; e.Actor != "anonymous" || e.Target != "GET /api/v1/devices" || e.Detail != `{"suppressed":0}` {
		t.Errorf("refused credentials: %+v", e)
	}
	var all auditPage
	tb.auditAs(t, tb.admin, "?after=0&limit=1000", &all)
	if _, err := audit.Verify(func(yield func(audit.Entry, error) bool) {
		for _, e := range all.Entries {
			if !yield(e, nil) {
				return
			}
		}
	}, audit.Head{}); err != nil {
		t.Errorf("the log as the API serves it does not verify: %v", err)
	}
}

func TestAuditDevice401Recorded(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	unsigned, _ := http.NewRequest("POST", tb.url+protocol.PathEnroll, strings.NewReader("{}"))
	if code := do(t, unsigned, nil); code != 401 {
		t.Fatalf("unsigned enroll: %d", code)
	}
	es := tb.auditEntries(t)
	if len(es) != 1 || es[0].Action != provision.ActionCredentialsRefused || es[0].Target != "POST "+protocol.PathEnroll ||
		!strings.Contains(es[0].Result, "device request") {
		t.Errorf("entries: %+v", es)
	}
}

func TestAuditPagingParameters(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	for i := range 5 {
		if err := tb.svc.Audit(context.Background(), "user.create", fmt.Sprint("u", i), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Entries 1 and 2 are setup's tokens, 3 to 7 the users.
	var p auditPage
	if code := tb.auditAs(t, tb.admin, "?limit=2", &p); code != 200 || len(p.Entries) != 2 || p.Entries[0].Seq != 7 || p.NextBefore != 6 {
		t.Fatalf("first page: %d %+v", code, p)
	}
	p = auditPage{}
	if code := tb.auditAs(t, tb.admin, "?limit=2&before=2", &p); code != 200 || len(p.Entries) != 1 || p.Entries[0].Seq != 1 || p.NextBefore != 0 {
		t.Fatalf("last page: %d %+v", code, p)
	}
	p = auditPage{}
	if code := tb.auditAs(t, tb.admin, "?after=5", &p); code != 200 || len(p.Entries) != 2 || p.Entries[0].Seq != 6 || p.NextAfter != 7 {
		t.Fatalf("after 5: %d %+v", code, p)
	}
	for _, q := range []string{"?limit=1001", "?limit=x", "?before=-1", "?before=x", "?after=1&before=3", "?after=y"} {
		var e apiError
		if code := tb.auditAs(t, tb.admin, q, &e); code != 400 || e.Error.Code != gatehouse.EINVALID {
			t.Errorf("%s: %d %+v", q, code, e)
		}
	}
}
