package server_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/store"
)

// enrollAs enrolls d saying hostname and agent version of itself.
func (tb *testBundle) enrollAs(t *testing.T, d *device, hostname, version string) protocol.Status {
	t.Helper()
	sk, err := protocol.DeriveSealKey(d.key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(protocol.EnrollRequest{MAC: d.mac, SealKey: sk.PublicKey().Bytes(), Hostname: hostname, AgentVersion: version})
	var st protocol.Status
	if code := do(t, d.request(t, tb.url, protocol.PathEnroll, body), &st); code != 200 {
		t.Fatalf("enroll: %d", code)
	}
	return st
}

// listFleet is three enrolled gateways, two of them named.
type listFleet struct {
	tb         *testBundle
	ids, codes []string // in enrollment order
}

func newListFleet(t *testing.T) *listFleet {
	t.Helper()
	f := &listFleet{tb: setup(t)}
	claims := [][2]string{{"edge-hall", "1.4.0"}, {"=HYPERLINK(\"http://x\")\x1b[31m", "2.0.0-rc1"}, {"yard-box", ""}}
	for i, c := range claims {
		d := newDevice(t)
		d.mac = fmt.Sprintf("02:00:00:00:00:%02x", i+1)
		st := f.tb.enrollAs(t, d, c[0], c[1])
		f.ids, f.codes = append(f.ids, st.DeviceID), append(f.codes, st.VerificationCode)
	}
	for id, name := range map[string]string{f.ids[0]: "zeta", f.ids[2]: "alpha"} {
		if code := f.tb.call(t, f.tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": name}, nil); code != 200 {
			t.Fatalf("approve %s: %d", name, code)
		}
	}
	return f
}

func (f *listFleet) list(t *testing.T, query string) provision.DeviceList {
	t.Helper()
	var l provision.DeviceList
	if code := f.tb.call(t, f.tb.view, "GET", "/api/v1/devices?"+query, nil, &l); code != 200 {
		t.Fatalf("GET /api/v1/devices?%s = %d", query, code)
	}
	return l
}

func listIDs(l provision.DeviceList) []string {
	var ids []string
	for _, d := range l.Devices {
		ids = append(ids, d.ID)
	}
	return ids
}

func TestListSearchesCode(t *testing.T) {
	t.Parallel()
	f := newListFleet(t)
	code := f.codes[1]
	for _, q := range []string{code, protocol.FormatCode(code), code[:3] + "-" + code[3:], " " + protocol.FormatCode(code) + " "} {
		l := f.list(t, "q="+url.QueryEscape(q))
		if !slices.Contains(listIDs(l), f.ids[1]) {
			t.Errorf("q=%q lists %q, not the device with that code (%s)", q, listIDs(l), f.ids[1])
		}
		for _, d := range l.Devices {
			if d.ID != f.ids[1] && !strings.Contains(d.VerificationCode, code) && !strings.Contains(d.Fingerprint, code) {
				t.Errorf("q=%q lists %s, whose code %s and fingerprint do not hold it", q, d.ID, d.VerificationCode)
			}
		}
	}
	if l := f.list(t, "q=yard-b"); !slices.Equal(listIDs(l), []string{f.ids[2]}) {
		t.Errorf("q=yard-b (a hostname) lists %q, want %q", listIDs(l), f.ids[2])
	}
}

func TestListSortsAndCounts(t *testing.T) {
	t.Parallel()
	f := newListFleet(t)
	if got, want := listIDs(f.list(t, "sort=name")), []string{f.ids[2], f.ids[0], f.ids[1]}; !slices.Equal(got, want) {
		t.Errorf("sort=name = %q, want %q (alpha, zeta, then the unnamed)", got, want)
	}
	if got, want := listIDs(f.list(t, "sort=-name")), []string{f.ids[0], f.ids[2], f.ids[1]}; !slices.Equal(got, want) {
		t.Errorf("sort=-name = %q, want %q", got, want)
	}
	if got, want := listIDs(f.list(t, "")), []string{f.ids[2], f.ids[1], f.ids[0]}; !slices.Equal(got, want) {
		t.Errorf("no sort = %q, want newest first %q", got, want)
	}
	l := f.list(t, "sort=state&counts=true")
	if l.Devices[0].ID != f.ids[1] {
		t.Errorf("sort=state lists %s first, want the pending %s", l.Devices[0].ID, f.ids[1])
	}
	var sum int
	for _, n := range l.Counts {
		sum += n
	}
	if sum != 3 || l.Counts[gatehouse.StatePending] != 1 || l.Total != 3 {
		t.Errorf("counts = %v (total %d), want 3 in all, 1 pending", l.Counts, l.Total)
	}
	// The counts follow the search, not the state; the total the state.
	l = f.list(t, "state=pending&q=edge&counts=1")
	if l.Total != 0 || len(l.Devices) != 0 || l.Counts[gatehouse.StatePending] != 0 || len(l.Counts) != 1 {
		t.Errorf("pending, q=edge: total %d, counts %v; want none pending and the approved one counted", l.Total, l.Counts)
	}
	if l := f.list(t, "sort=last_seen"); l.Counts != nil {
		t.Errorf("counts sent unasked: %v", l.Counts)
	}
	for _, q := range []string{"sort=mac", "sort=--name", "counts=maybe", "format=xml"} {
		var e apiError
		if code := f.tb.call(t, f.tb.view, "GET", "/api/v1/devices?"+q, nil, &e); code != 400 || e.Error.Message == "" {
			t.Errorf("%s = %d %+v, want 400 with a message", q, code, e)
		}
	}
}

func TestDeviceAgentClaims(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	id := tb.enrollAs(t, d, "edge-7", "1.4.0").DeviceID
	get := func() gatehouse.Device {
		var got gatehouse.Device
		if code := tb.call(t, tb.view, "GET", "/api/v1/devices/"+id, nil, &got); code != 200 {
			t.Fatalf("GET device: %d", code)
		}
		return got
	}
	if got := get(); got.Hostname != "edge-7" || got.AgentVersion != "1.4.0" {
		t.Errorf("device says hostname %q, agent %q; want edge-7, 1.4.0", got.Hostname, got.AgentVersion)
	}
	// The agent enrolls again on every start; an upgrade shows.
	tb.enrollAs(t, d, "edge-7", "1.5.0")
	if got := get(); got.AgentVersion != "1.5.0" {
		t.Errorf("after a new agent enrolled: agent %q, want 1.5.0", got.AgentVersion)
	}
	// What cannot be shown safely is dropped, and the rest kept short.
	tb.enrollAs(t, d, "edge\x00-\u202e7\n"+strings.Repeat("x", 400), strings.Repeat("9", 100))
	got := get()
	if want := "edge-7" + strings.Repeat("x", 253-6); got.Hostname != want {
		t.Errorf("hostname = %q, want %q", got.Hostname, want)
	}
	if got.AgentVersion != strings.Repeat("9", 64) {
		t.Errorf("agent version = %q, want 64 nines", got.AgentVersion)
	}
}

// readCSV fetches the export for query and parses it.
func readCSV(t *testing.T, tb *testBundle, token, query string) (*http.Response, [][]string) {
	t.Helper()
	req, _ := http.NewRequest("GET", tb.url+"/api/v1/devices?format=csv&"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read export: %v", err)
	}
	if resp.StatusCode != 200 {
		return resp, nil
	}
	for _, secret := range []string{"PRIVATE KEY", "CERTIFICATE", "seal", "dps_primary_key"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("export holds %q", secret)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, body)
	}
	return resp, rows
}

func TestListExportCSV(t *testing.T) {
	t.Parallel()
	f := newListFleet(t)
	resp, rows := readCSV(t, f.tb, f.tb.view, "sort=name")
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="gatehouse-devices-`) {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if len(rows) != 4 {
		t.Fatalf("export has %d rows, want a header and 3", len(rows))
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"id", "name", "state", "mac", "hostname", "agent_version", "verification_code", "hub", "labels", "last_seen"} {
		if _, ok := col[name]; !ok {
			t.Errorf("export has no %s column: %q", name, rows[0])
		}
	}
	var ids []string
	for _, r := range rows[1:] {
		ids = append(ids, r[col["id"]])
	}
	if want := []string{f.ids[2], f.ids[0], f.ids[1]}; !slices.Equal(ids, want) {
		t.Errorf("export order = %q, want sort=name's %q", ids, want)
	}
	evil := rows[3]
	if h := evil[col["hostname"]]; !strings.HasPrefix(h, `'=HYPERLINK(`) || strings.ContainsRune(h, '\x1b') {
		t.Errorf("hostile hostname exported as %q, want it quoted as text and without control characters", h)
	}
	if c := evil[col["verification_code"]]; c != protocol.FormatCode(f.codes[1]) {
		t.Errorf("code exported as %q, want %q", c, protocol.FormatCode(f.codes[1]))
	}
	if v := evil[col["agent_version"]]; v != "2.0.0-rc1" {
		t.Errorf("agent version exported as %q", v)
	}
	// The filter applies: only the pending one.
	if _, rows := readCSV(t, f.tb, f.tb.view, "state=pending"); len(rows) != 2 || rows[1][col["id"]] != f.ids[1] {
		t.Errorf("pending export = %q", rows)
	}
	if _, rows := readCSV(t, f.tb, f.tb.view, "q=no-such-gateway"); len(rows) != 1 {
		t.Errorf("export matching nothing = %q, want the header alone", rows)
	}
	if resp, _ := readCSV(t, f.tb, "", ""); resp.StatusCode != 401 {
		t.Errorf("export without a token = %d, want 401", resp.StatusCode)
	}
	if resp, _ := readCSV(t, f.tb, f.tb.view, "sort=bogus"); resp.StatusCode != 400 {
		t.Errorf("export with a bad sort = %d, want 400", resp.StatusCode)
	}
}

// TestListExportAll: the export holds every matching device, past any page
// and across the batches it reads them in, once each, in order.
func TestListExportAll(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	const n = 1234
	seeds := make([]store.Seed, n)
	for i := range seeds {
		dev := gatehouse.Device{ID: fmt.Sprintf("seed-%04d", i), MAC: fmt.Sprintf("02:00:00:01:%02x:%02x", i/256, i%256),
			Fingerprint: fmt.Sprintf("%064x", i), VerificationCode: fmt.Sprintf("%06d", i)}
		seeds[i] = store.Seed{Device: dev, Key: gatehouse.DeviceKey{Fingerprint: dev.Fingerprint, KeyType: "ed25519", PublicKey: []byte{1}, SealKey: []byte{2}}}
	}
	if err := tb.db.SeedPending(t.Context(), seeds); err != nil {
		t.Fatal(err)
	}
	_, rows := readCSV(t, tb, tb.view, "sort=state")
	if len(rows) != n+1 {
		t.Fatalf("export has %d rows, want a header and %d", len(rows), n)
	}
	// Seeded in one transaction: the same first_seen, so the id orders them.
	for i, r := range rows[1:] {
		if want := fmt.Sprintf("seed-%04d", i); r[0] != want {
			t.Fatalf("row %d is %s, want %s", i+1, r[0], want)
		}
	}
}
