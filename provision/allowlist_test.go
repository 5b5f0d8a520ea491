package provision_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

func importList(t *testing.T, svc *provision.Service, csv string, opt provision.ImportOptions) (*provision.ImportResult, error) {
	t.Helper()
	return svc.ImportAllowlist(from("user:olga", "192.0.2.9", "req-1"), "user:olga", strings.NewReader(csv), opt)
}

func mustImport(t *testing.T, svc *provision.Service, csv string) *provision.ImportResult {
	t.Helper()
	res, err := importList(t, svc, csv, provision.ImportOptions{})
	if err != nil {
		t.Fatalf("import: %v (%+v)", err, res)
	}
	return res
}

func entryOf(t *testing.T, svc *provision.Service, mac string) gatehouse.AllowlistEntry {
	t.Helper()
	page, err := svc.Allowlist(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		if e.MAC == mac {
			return e
		}
	}
	t.Fatalf("MAC %s is not on the allowlist: %+v", mac, page.Entries)
	return gatehouse.AllowlistEntry{}
}

// TestAllowlistApprovesOnFirstContact: a listed MAC's first key is approved
// under the listed name and labels without an operator, provisioned into
// every simulated backend, and pinned on the entry.
func TestAllowlistApprovesOnFirstContact(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	res := mustImport(t, tb.svc, "mac,name,labels\n"+strings.ToUpper(g.mac)+",gw-listed,site=north;group=edge\n")
	if len(res.Imported) != 1 || res.Imported[0].MAC != g.mac || res.Imported[0].ImportedBy != "user:olga" {
		t.Fatalf("import = %+v", res)
	}
	id := tb.enroll(t, g).DeviceID
	st := tb.waitFor(t, g, gatehouse.StateProvisioned)
	if st.Bundle == nil || st.Bundle.Name != "gw-listed" || st.Bundle.DPSRegistrationID != "gw-listed" {
		t.Fatalf("bundle = %+v", st.Bundle)
	}
	d, err := tb.svc.Device(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "gw-listed" || d.Labels["site"] != "north" || d.Labels["group"] != "edge" || d.ApprovedBy != "allowlist (imported by user:olga)" {
		t.Fatalf("device = %+v", d)
	}
	if tags := tb.mender.TagsOf(tb.mender.Devices()[0].ID); tags["name"] != "gw-listed" {
		t.Fatalf("mender tags = %v", tags)
	}
	e := entryOf(t, tb.svc, g.mac)
	if e.DeviceID != id || e.Fingerprint != g.sig.Fingerprint || e.UsedAt == nil {
		t.Fatalf("entry = %+v, want pinned to %s and its key", e, id)
	}
	assertEvents(t, tb, id, "enrolled", "allowlisted", "approved", "provisioned")
	approvals := only(t, auditLog(t, tb.svc), provision.ActionDeviceApprove, 1)
	if a := approvals[0]; a.Actor != "allowlist (imported by user:olga)" || a.Result != "ok" || a.Target != id ||
		detailOf(t, a)["fingerprint"] != g.sig.Fingerprint || detailOf(t, a)["allowlist"] != g.mac {
		t.Fatalf("approval entry = %+v", a)
	}
	imports := only(t, auditLog(t, tb.svc), provision.ActionAllowlistImport, 1)
	wantEntry(t, imports[0], "user:olga", "192.0.2.9", "req-1", "allowlist", "ok")
}

// TestAllowlistPinsTheFirstKey: once a listed MAC has enrolled, another key
// claiming that MAC is never approved from the list.
func TestAllowlistPinsTheFirstKey(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	first := newGateway(t)
	mustImport(t, tb.svc, first.mac+",gw-pinned\n")
	firstID := tb.enroll(t, first).DeviceID
	tb.waitFor(t, first, gatehouse.StateProvisioned)

	second := newGateway(t)
	second.mac = first.mac // reflashed, or someone copying the MAC
	st := tb.enroll(t, second)
	if st.DeviceID == firstID || st.State != string(gatehouse.StatePending) {
		t.Fatalf("second key: %+v", st)
	}
	// Its approval could only come from a job enqueued with the enrollment:
	// none was, and the entry still holds the first key.
	e := entryOf(t, tb.svc, first.mac)
	if e.DeviceID != firstID || e.Fingerprint != first.sig.Fingerprint {
		t.Fatalf("entry = %+v, want still pinned to the first key", e)
	}
	evs, err := tb.svc.Events(context.Background(), st.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Kind == "allowlisted" || ev.Kind == "approved" {
			t.Fatalf("second key's timeline: %+v", evs)
		}
	}
	d, _ := tb.svc.Device(context.Background(), st.DeviceID)
	if d.State != gatehouse.StatePending || d.Name != "" {
		t.Fatalf("second key's device = %+v", d)
	}
	// An operator cannot give it the listed name either: the entry keeps it
	// for the device it is pinned to (which holds it anyway).
	_, err = tb.svc.Approve(context.Background(), "op", st.DeviceID, provision.Approval{Name: "gw-pinned"})
	wantCode(t, err, gatehouse.ECONFLICT)
}

// TestAllowlistOneBadRowImportsNothing: a file with one bad row is refused
// whole, with that row's line; skip_invalid imports the others.
func TestAllowlistOneBadRowImportsNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	csv := "# site north\nmac,name,labels\n02:10:00:00:00:01,gw-n1,site=north\n02:10:00:00:00:02,GW_N2\n02:10:00:00:00:03,gw-n3\n"
	res, err := importList(t, tb.svc, csv, provision.ImportOptions{})
	var rows *provision.InvalidRowsError
	if !errors.As(err, &rows) || gatehouse.ErrorCode(err) != gatehouse.EINVALID {
		t.Fatalf("import = %v, want InvalidRowsError", err)
	}
	if len(res.Errors) != 1 || res.Errors[0].Line != 4 || !strings.Contains(res.Errors[0].Msg, "invalid name") || res.Rows != 3 {
		t.Fatalf("errors = %+v, want line 4's name", res.Errors)
	}
	if page, _ := tb.svc.Allowlist(context.Background(), 0, 0); page.Total != 0 {
		t.Fatalf("a refused file listed %d entries", page.Total)
	}
	refused := only(t, auditLog(t, tb.svc), provision.ActionAllowlistImport, 1)[0]
	if !strings.HasPrefix(refused.Result, "refused: 1 of 3 rows have errors") {
		t.Fatalf("audit entry = %+v", refused)
	}

	dry, err := importList(t, tb.svc, csv, provision.ImportOptions{SkipInvalid: true, DryRun: true})
	if err != nil || !dry.DryRun || len(dry.Imported) != 2 || len(dry.Errors) != 1 {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	if page, _ := tb.svc.Allowlist(context.Background(), 0, 0); page.Total != 0 {
		t.Fatalf("a dry run listed %d entries", page.Total)
	}

	res, err = importList(t, tb.svc, csv, provision.ImportOptions{SkipInvalid: true})
	if err != nil || len(res.Imported) != 2 || len(res.Errors) != 1 || res.Errors[0].Line != 4 {
		t.Fatalf("skip_invalid import = %+v, %v", res, err)
	}
	if e := entryOf(t, tb.svc, "02:10:00:00:00:01"); e.Name != "gw-n1" || e.Labels["site"] != "north" || e.Used() {
		t.Fatalf("entry = %+v", e)
	}
	entryOf(t, tb.svc, "02:10:00:00:00:03")
	// The same file again changes nothing and is not an error.
	again, err := importList(t, tb.svc, "02:10:00:00:00:01,gw-n1,site=north\n02:10:00:00:00:03,gw-n3\n", provision.ImportOptions{})
	if err != nil || again.Unchanged != 2 || len(again.Imported) != 0 {
		t.Fatalf("importing the same rows again = %+v, %v", again, err)
	}
}

// TestAllowlistReportsTakenNamesByLine: names taken in each backend, in
// gatehouse or on the list, and MACs that enrolled already, are each
// reported on their own line.
func TestAllowlistReportsTakenNamesByLine(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	other := newGateway(t)
	dev, err := tb.mender.Preauthorize(ctx, map[string]string{"mac": "02:99:00:00:00:01"}, protocol.PublicKeyPEM(other.sig.PublicKey), false)
	if err != nil {
		t.Fatal(err)
	}
	tb.mender.IndexNow()
	tb.mender.SetTag(ctx, dev.ID, "name", "in-mender")
	tb.dps.CreateEnrollment(ctx, gatehouse.Enrollment{RegistrationID: "in-dps", DeviceID: "in-dps",
		PrimaryKey: "MDEyMzQ1Njc4OWFiY2RlZg==", SecondaryKey: "MDEyMzQ1Njc4OWFiY2RlZg=="})
	tb.hub.AddDevice("hub-b.azure-devices.net", gatehouse.HubDevice{DeviceID: "in-hub"})
	named := newGateway(t)
	tb.svc.Approve(ctx, "op", tb.enroll(t, named).DeviceID, provision.Approval{Name: "in-gatehouse"})
	waiting := newGateway(t)
	waitingID := tb.enroll(t, waiting).DeviceID
	mustImport(t, tb.svc, "02:20:00:00:00:09,on-list\n")

	csv := strings.Join([]string{
		"02:20:00:00:00:01,in-mender",
		"02:20:00:00:00:02,in-dps",
		"02:20:00:00:00:03,in-hub",
		"02:20:00:00:00:04,in-gatehouse",
		"02:20:00:00:00:05,on-list",
		waiting.mac + ",gw-waiting",
		"02:20:00:00:00:09,renamed",
		"02:20:00:00:00:07,gw-free",
	}, "\n")
	res, err := importList(t, tb.svc, csv, provision.ImportOptions{SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]string{
		1: {"in-mender", "taken in mender"},
		2: {"taken in dps"},
		3: {"taken in iothub hub-b.azure-devices.net"},
		4: {"taken in gatehouse"},
		5: {"on the allowlist for MAC 02:20:00:00:00:09"},
		6: {"already enrolled as device " + waitingID, "approve"},
		7: {"already on the allowlist as \"on-list\"", "allowlist remove"},
	}
	got := map[int]string{}
	for _, e := range res.Errors {
		got[e.Line] = e.Msg
	}
	for line, frags := range want {
		for _, f := range frags {
			if !strings.Contains(got[line], f) {
				t.Errorf("line %d: %q does not say %q", line, got[line], f)
			}
		}
	}
	if len(res.Errors) != len(want) || len(res.Imported) != 1 || res.Imported[0].Name != "gw-free" {
		t.Fatalf("import = %+v", res)
	}
}

// TestAllowlistNameKeptFromOtherApprovals: a listed name is taken for
// every device but the entry's own.
func TestAllowlistNameKeptFromOtherApprovals(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	mustImport(t, tb.svc, "02:30:00:00:00:01,gw-kept\n")
	id := tb.enroll(t, newGateway(t)).DeviceID
	_, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-kept"})
	wantCode(t, err, gatehouse.ECONFLICT)
	if !strings.Contains(err.Error(), "allowlist for MAC 02:30:00:00:00:01") {
		t.Fatalf("refusal %q does not name the entry", err)
	}
	if err := tb.svc.RemoveAllowlistEntry(context.Background(), "op", "02-30-00-00-00-01"); err == nil {
		t.Fatal("removing by a MAC without colons was accepted")
	}
	if err := tb.svc.RemoveAllowlistEntry(context.Background(), "op", "02:30:00:00:00:01"); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-kept"}); err != nil {
		t.Fatalf("approval once the entry is removed: %v", err)
	}
	err = tb.svc.RemoveAllowlistEntry(context.Background(), "op", "02:30:00:00:00:01")
	wantCode(t, err, gatehouse.ENOTFOUND)
	only(t, auditLog(t, tb.svc), provision.ActionAllowlistRemove, 3)
}

// TestAllowlistWaitsOutABackend: a backend that cannot say whether the
// name is free leaves the gateway pending with the reason, and the approval
// is retried until it can.
func TestAllowlistWaitsOutABackend(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	mustImport(t, tb.svc, g.mac+",gw-later\n")
	tb.mender.FailNext(1, nil)
	id := tb.enroll(t, g).DeviceID
	tb.waitFor(t, g, gatehouse.StateProvisioned)
	assertEvents(t, tb, id, "allowlisted", "allowlist_held", "approved", "provisioned")
	d, _ := tb.svc.Device(context.Background(), id)
	if d.Name != "gw-later" || d.Reason != "" {
		t.Fatalf("device = %+v", d)
	}
}

// TestAllowlistNameTakenSinceImport: a name some backend took after the
// import is not adopted; the gateway waits for an operator, told why.
func TestAllowlistNameTakenSinceImport(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	mustImport(t, tb.svc, g.mac+",gw-race\n")
	tb.dps.CreateEnrollment(context.Background(), gatehouse.Enrollment{RegistrationID: "gw-race", DeviceID: "gw-race",
		PrimaryKey: "MDEyMzQ1Njc4OWFiY2RlZg==", SecondaryKey: "MDEyMzQ1Njc4OWFiY2RlZg=="})
	id := tb.enroll(t, g).DeviceID
	var d *gatehouse.Device
	if !eventually(waitTimeout, func() bool {
		d, _ = tb.svc.Device(context.Background(), id)
		return d.Reason != ""
	}) {
		t.Fatal("the gateway was never told why it waits")
	}
	if d.State != gatehouse.StatePending || !strings.Contains(d.Reason, "taken in dps") {
		t.Fatalf("device = %+v", d)
	}
	if !eventually(waitTimeout, func() bool {
		for _, e := range auditLog(t, tb.svc) {
			if e.Action == provision.ActionDeviceApprove && strings.HasPrefix(e.Result, "refused:") {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the refused approval is not in the audit log")
	}
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-race-2"}); err != nil {
		t.Fatalf("an operator approves it under another name: %v", err)
	}
}

// TestAllowlistImportBounds: a file too long or not CSV is refused whole.
func TestAllowlistImportBounds(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	var b strings.Builder
	for i := range provision.MaxAllowlistRows + 1 {
		fmt.Fprintf(&b, "02:40:00:00:%02x:%02x,gw-%d\n", i>>8, i&0xff, i)
	}
	_, err := importList(t, tb.svc, b.String(), provision.ImportOptions{})
	wantCode(t, err, gatehouse.EINVALID)
	var rows *provision.InvalidRowsError
	if errors.As(err, &rows) {
		t.Fatalf("an oversized file was checked row by row: %v", err)
	}
	_, err = importList(t, tb.svc, "\"02:40:00:00:00:01,gw-1\n", provision.ImportOptions{})
	wantCode(t, err, gatehouse.EINVALID)
}

// TestAllowlistNameKeptFromRenames: renaming a gateway to a name the
// allowlist keeps for another MAC is refused before any backend changes.
func TestAllowlistNameKeptFromRenames(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "r.db")), fastConfig(apis{Mender: tb.mender}))
	ctx := context.Background()
	_, id := tb.provisionOne(t, "gw-before")
	mustImport(t, tb.svc, "02:70:00:00:00:01,gw-listed-later\n")
	name := "gw-listed-later"
	_, err := tb.svc.Update(ctx, "op", id, provision.Edit{Name: &name})
	wantCode(t, err, gatehouse.ECONFLICT)
	if !strings.Contains(err.Error(), "allowlist for MAC 02:70:00:00:00:01") {
		t.Fatalf("refusal %q does not name the entry", err)
	}
	d, _ := tb.svc.Device(ctx, id)
	mid := stepOutput(d, gatehouse.StepMender)[gatehouse.OutMenderDeviceID]
	if d.Name != "gw-before" || tb.mender.TagsOf(mid)["name"] != "gw-before" {
		t.Fatalf("a refused rename changed the name: %q, Mender tag %q", d.Name, tb.mender.TagsOf(mid)["name"])
	}
}
