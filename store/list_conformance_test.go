package store_test

// Conformance tests for the Devices list: its orders, the walk by cursor an
// export takes, per-state counts, search by verification code, and what
// the agent says of itself. Registered in runConformance, so both dialects
// run them.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// sortFleet makes six devices that each order puts differently:
//
//	id      first seen  name    state         last seen  hub
//	dev-01  +0m         yard    provisioned   +50m       hub-b
//	dev-02  +1m         -       pending       +10m       -
//	dev-03  +2m         attic   configured    +30m       hub-a
//	dev-04  +3m         -       failed        +40m       -
//	dev-05  +4m         mill    provisioned   +20m       hub-a
//	dev-06  +5m         -       pending       +60m       -
func sortFleet(t *testing.T, db *store.DB, clk *clock) {
	t.Helper()
	var ds []*gatehouse.Device
	for i := 1; i <= 6; i++ {
		ds = append(ds, newDevice(fmt.Sprintf("dev-%02d", i)))
	}
	createAt(t, db, clk, ds...)
	for id, u := range map[string]store.DeviceUpdate{
		"dev-01": {Name: ptr("yard"), State: ptr(gatehouse.StateProvisioned)},
		"dev-03": {Name: ptr("attic"), State: ptr(gatehouse.StateConfigured)},
		"dev-04": {State: ptr(gatehouse.StateFailed)},
		"dev-05": {Name: ptr("mill"), State: ptr(gatehouse.StateProvisioned)},
	} {
		mustUpdate(t, db, id, u)
	}
	for id, hub := range map[string]string{"dev-01": "hub-b", "dev-03": "hub-a", "dev-05": "hub-a"} {
		stepTx(t, db, func(ctx context.Context, tx *store.Tx) error {
			if err := tx.CreateSteps(ctx, id, []gatehouse.StepName{gatehouse.StepHub}); err != nil {
				return err
			}
			return tx.FinishStep(ctx, id, gatehouse.StepHub, map[string]string{gatehouse.OutAssignedHub: hub, "other": "x"}, nil)
		})
	}
	// A device with a follow-up step that has no hub yet sorts with those
	// that have no step.
	stepTx(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateSteps(ctx, "dev-04", []gatehouse.StepName{gatehouse.StepHub})
	})
	for id, m := range map[string]int{"dev-01": 50, "dev-02": 10, "dev-03": 30, "dev-04": 40, "dev-05": 20, "dev-06": 60} {
		clk.Set(t0.Add(time.Duration(m) * time.Minute))
		inTx(t, db, func(tx *store.Tx) error { return tx.TouchDevice(t.Context(), id, "192.0.2.1:4000", 0) })
	}
}

// sortCases are sortFleet's orders.
var sortCases = []struct {
	sort store.DeviceSort
	want []string
}{
	{store.SortNewest, []string{"dev-06", "dev-05", "dev-04", "dev-03", "dev-02", "dev-01"}},
	// Unnamed last both ways, by id among themselves.
	{store.SortName, []string{"dev-03", "dev-05", "dev-01", "dev-02", "dev-04", "dev-06"}},
	{store.SortNameDesc, []string{"dev-01", "dev-05", "dev-03", "dev-02", "dev-04", "dev-06"}},
	// The happy path's order, not the alphabet's; newest first within.
	{store.SortState, []string{"dev-06", "dev-02", "dev-05", "dev-01", "dev-03", "dev-04"}},
	{store.SortStateDesc, []string{"dev-04", "dev-03", "dev-05", "dev-01", "dev-06", "dev-02"}},
	{store.SortLastSeen, []string{"dev-02", "dev-05", "dev-03", "dev-04", "dev-01", "dev-06"}},
	{store.SortLastSeenDesc, []string{"dev-06", "dev-01", "dev-04", "dev-03", "dev-05", "dev-02"}},
	// No hub last both ways; newest first among the same hub and among none.
	{store.SortHub, []string{"dev-05", "dev-03", "dev-01", "dev-06", "dev-04", "dev-02"}},
	{store.SortHubDesc, []string{"dev-01", "dev-05", "dev-03", "dev-06", "dev-04", "dev-02"}},
}

func testDevicesSort(t *testing.T, db *store.DB, clk *clock) {
	sortFleet(t, db, clk)
	for _, tt := range sortCases {
		ids, total := mustDevices(t, db, store.DeviceFilter{Sort: tt.sort})
		wantIDs(t, fmt.Sprintf("Devices(sort %q)", tt.sort), ids, total, tt.want, len(tt.want))
		// A page of a sorted list is that part of it.
		ids, total = mustDevices(t, db, store.DeviceFilter{Sort: tt.sort, Offset: 2, Limit: 3})
		wantIDs(t, fmt.Sprintf("Devices(sort %q, page 2-4)", tt.sort), ids, total, tt.want[2:5], len(tt.want))
	}
	// With a filter too: the pending ones by name, unnamed by id.
	ids, total := mustDevices(t, db, store.DeviceFilter{State: gatehouse.StatePending, Sort: store.SortName})
	wantIDs(t, "Devices(pending, sort name)", ids, total, []string{"dev-02", "dev-06"}, 2)

	err := db.View(t.Context(), func(tx *store.Tx) error {
		_, _, err := tx.Devices(t.Context(), store.DeviceFilter{Sort: "mac"})
		return err
	})
	wantCode(t, err, gatehouse.EINVALID)
	for _, s := range store.DeviceSorts {
		if !s.Valid() {
			t.Errorf("DeviceSort(%q).Valid() = false", s)
		}
	}
	if store.DeviceSort("-").Valid() || store.DeviceSort("--name").Valid() {
		t.Error("a sort of only '-' or '--name' is valid")
	}
}

// walk lists every device f matches by cursor, batch at a time, calling
// between after each batch.
func walk(t *testing.T, db *store.DB, f store.DeviceFilter, between func()) []string {
	t.Helper()
	var ids []string
	var cur *store.DeviceCursor
	for range 100 {
		var batch []*gatehouse.Device
		err := db.View(t.Context(), func(tx *store.Tx) error {
			var err error
			batch, cur, err = tx.DevicesAfter(t.Context(), f, cur)
			return err
		})
		if err != nil {
			t.Fatalf("DevicesAfter: %v", err)
		}
		if f.Limit > 0 && len(batch) > f.Limit {
			t.Fatalf("DevicesAfter returned %d devices, over the limit %d", len(batch), f.Limit)
		}
		for _, d := range batch {
			ids = append(ids, d.ID)
		}
		if cur == nil {
			return ids
		}
		if between != nil {
			between()
		}
	}
	t.Fatal("DevicesAfter never ended")
	return nil
}

func testDevicesAfter(t *testing.T, db *store.DB, clk *clock) {
	sortFleet(t, db, clk)
	for _, tt := range sortCases {
		for _, limit := range []int{1, 2, 4, 6, 0} {
			got := walk(t, db, store.DeviceFilter{Sort: tt.sort, Limit: limit}, nil)
			if !slices.Equal(got, tt.want) {
				t.Errorf("walk(sort %q, batches of %d) = %q, want %q", tt.sort, limit, got, tt.want)
			}
		}
	}
	got := walk(t, db, store.DeviceFilter{State: gatehouse.StateProvisioned, Sort: store.SortHub, Limit: 1}, nil)
	if want := []string{"dev-05", "dev-01"}; !slices.Equal(got, want) {
		t.Errorf("walk(provisioned, sort hub) = %q, want %q", got, want)
	}
}

// testDevicesAfterChanges: devices added and removed during a walk neither
// repeat the ones listed nor hide the ones to come, as offsets would.
func testDevicesAfterChanges(t *testing.T, db *store.DB, clk *clock) {
	sortFleet(t, db, clk)
	n := 0
	got := walk(t, db, store.DeviceFilter{Limit: 2}, func() {
		n++
		clk.Set(t0.Add(time.Hour + time.Duration(n)*time.Minute))
		mustCreate(t, db, newDevice(fmt.Sprintf("new-%02d", n))) // newer than all: before the cursor
		if n == 1 {
			inTx(t, db, func(tx *store.Tx) error { return tx.DeleteDevices(t.Context(), []string{"dev-04"}) })
		}
	})
	if want := []string{"dev-06", "dev-05", "dev-03", "dev-02", "dev-01"}; !slices.Equal(got, want) {
		t.Errorf("walk while devices come and go = %q, want %q", got, want)
	}
}

func testDeviceCounts(t *testing.T, db *store.DB, clk *clock) {
	sortFleet(t, db, clk)
	mustUpdate(t, db, "dev-02", store.DeviceUpdate{Name: ptr("yard-2")})
	count := func(f store.DeviceFilter) map[gatehouse.State]int {
		var c map[gatehouse.State]int
		inTx(t, db, func(tx *store.Tx) (err error) {
			c, err = tx.DeviceCounts(t.Context(), f)
			return err
		})
		return c
	}
	for _, tt := range []struct {
		f    store.DeviceFilter
		want map[gatehouse.State]int
	}{
		{store.DeviceFilter{}, map[gatehouse.State]int{"pending": 2, "provisioned": 2, "configured": 1, "failed": 1}},
		// The state filter is not applied: the counts are each state's.
		{store.DeviceFilter{State: gatehouse.StateFailed}, map[gatehouse.State]int{"pending": 2, "provisioned": 2, "configured": 1, "failed": 1}},
		{store.DeviceFilter{Search: "yard"}, map[gatehouse.State]int{"pending": 1, "provisioned": 1}},
		{store.DeviceFilter{SeenAfter: t0.Add(45 * time.Minute)}, map[gatehouse.State]int{"pending": 1, "provisioned": 1}},
		{store.DeviceFilter{Search: "no-such"}, map[gatehouse.State]int{}},
	} {
		if got := count(tt.f); !same(got, tt.want) {
			t.Errorf("DeviceCounts(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func testDevicesSearchCode(t *testing.T, db *store.DB, clk *clock) {
	a, b, c := newDevice("dev-01"), newDevice("dev-02"), newDevice("dev-03")
	a.VerificationCode, b.VerificationCode, c.VerificationCode = "557546", "324842", "055754"
	a.Hostname, b.Hostname = "Edge-Hall-7", "yard-box"
	createAt(t, db, clk, a, b, c)
	for _, tt := range []struct {
		search, code string
		want         []string
	}{
		{"324842", "324842", []string{"dev-02"}},
		{"557 546", "557546", []string{"dev-01"}},      // the code as the page writes it
		{"5575", "5575", []string{"dev-03", "dev-01"}}, // part of a code
		{"557 546", "", nil},                           // no code asked for: the text alone
		{"hall-7", "", []string{"dev-01"}},             // hostname, case aside
		{"%", "", nil},                                 // wildcards are literal in codes too
		{"yard", "", []string{"dev-02"}},               // hostname
		{"324 842", "324842", []string{"dev-02"}},      // spaced
		{"000000", "000000", nil},                      // no such code
		{"fp-dev-03", "", []string{"dev-03"}},          // fingerprint still
		{"02:00:00:00:00:01", "", []string{"dev-01"}},  // MAC still
	} {
		ids, total := mustDevices(t, db, store.DeviceFilter{Search: tt.search, SearchCode: tt.code})
		wantIDs(t, fmt.Sprintf("Devices(search %q, code %q)", tt.search, tt.code), ids, total, tt.want, len(tt.want))
	}
}

// testDevicesSearchCodeMany finds one code among 10,000 pending devices,
// and every device whose code holds a shorter run of digits.
func testDevicesSearchCodeMany(t *testing.T, db *store.DB, _ *clock) {
	const n = 10_000
	seeds := make([]store.Seed, n)
	for i := range seeds {
		d := gatehouse.Device{ID: fmt.Sprintf("seed-%05d", i), MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256),
			Fingerprint: fmt.Sprintf("fp-%05d", i), VerificationCode: fmt.Sprintf("%06d", i*97%1_000_000)}
		seeds[i] = store.Seed{Device: d, Key: gatehouse.DeviceKey{Fingerprint: d.Fingerprint, KeyType: "ed25519",
			PublicKey: []byte{1}, SealKey: []byte{2}}}
	}
	if err := db.SeedPending(t.Context(), seeds); err != nil {
		t.Fatalf("SeedPending: %v", err)
	}
	// 4242*97 = 411474: the only code that is 411474.
	ids, total := mustDevices(t, db, store.DeviceFilter{State: gatehouse.StatePending, Search: "411 474", SearchCode: "411474", Limit: 50})
	wantIDs(t, "Devices(code 411 474 among 10,000)", ids, total, []string{"seed-04242"}, 1)
	var want int
	for _, s := range seeds {
		if strings.Contains(s.Device.VerificationCode, "9999") || strings.Contains(s.Device.Fingerprint, "9999") {
			want++
		}
	}
	if _, total := mustDevices(t, db, store.DeviceFilter{Search: "9999", SearchCode: "9999", Limit: 1}); total != want {
		t.Errorf("Devices(search 9999) total = %d, want %d", total, want)
	}
}

func testAgentClaims(t *testing.T, db *store.DB, _ *clock) {
	d := newDevice("dev-01")
	d.Hostname, d.AgentVersion = "edge-7", "1.4.0"
	mustCreate(t, db, d, newDevice("dev-02"))
	if got := mustDevice(t, db, "dev-01"); got.Hostname != "edge-7" || got.AgentVersion != "1.4.0" {
		t.Errorf("created device says hostname %q, agent %q; want edge-7, 1.4.0", got.Hostname, got.AgentVersion)
	}
	if got := mustDevice(t, db, "dev-02"); got.Hostname != "" || got.AgentVersion != "" {
		t.Errorf("device created without claims says hostname %q, agent %q", got.Hostname, got.AgentVersion)
	}
	before := mustDevice(t, db, "dev-01")
	inTx(t, db, func(tx *store.Tx) error { return tx.SetAgentClaims(t.Context(), "dev-01", "edge-7b", "1.5.0") })
	got := mustDevice(t, db, "dev-01")
	if got.Hostname != "edge-7b" || got.AgentVersion != "1.5.0" {
		t.Errorf("after SetAgentClaims: hostname %q, agent %q; want edge-7b, 1.5.0", got.Hostname, got.AgentVersion)
	}
	diffStruct(t, "device after SetAgentClaims", got, before, "Hostname", "AgentVersion")
	// A listed device carries them too.
	var list []*gatehouse.Device
	inTx(t, db, func(tx *store.Tx) (err error) {
		list, _, err = tx.Devices(t.Context(), store.DeviceFilter{Search: "edge-7b"})
		return err
	})
	if len(list) != 1 || list[0].Hostname != "edge-7b" || list[0].AgentVersion != "1.5.0" {
		t.Errorf("Devices(search edge-7b) = %+v", list)
	}
	// A re-key moves the gateway onto the new key's box, and what its agent
	// says of itself with it.
	cand := newDevice("dev-03")
	cand.Hostname, cand.AgentVersion = "edge-7-new", "2.0.0"
	mustCreate(t, db, cand)
	inTx(t, db, func(tx *store.Tx) error { return tx.AdoptKey(t.Context(), "dev-01", cand) })
	if got := mustDevice(t, db, "dev-01"); got.Hostname != "edge-7-new" || got.AgentVersion != "2.0.0" {
		t.Errorf("after a re-key: hostname %q, agent %q; want the new key's edge-7-new, 2.0.0", got.Hostname, got.AgentVersion)
	}
}
