package store_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"gatehouse"
	"gatehouse/store"
)

func seedsFor(ds ...*gatehouse.Device) []store.Seed {
	var out []store.Seed
	for _, d := range ds {
		out = append(out, store.Seed{Device: *d, Key: newKey(d)})
	}
	return out
}

// TestSeedPendingLikeCreateDevice seeds devices into one database and
// creates the same ones with CreateDevice in another: every device and key
// must read back the same, so tests that seed see what enrollment leaves.
func TestSeedPendingLikeCreateDevice(t *testing.T) {
	t.Parallel()
	seeded := openSQLite(t, filepath.Join(t.TempDir(), "seeded.db"))
	created := openSQLite(t, filepath.Join(t.TempDir(), "created.db"))
	for _, db := range []*store.DB{seeded, created} {
		clk := &clock{now: t0}
		db.Now = clk.Now
	}
	var ds []*gatehouse.Device
	for i := range 3 {
		ds = append(ds, newDevice(fmt.Sprintf("dev%02d", i)))
	}
	seeds := seedsFor(ds...)
	if err := seeded.SeedPending(t.Context(), seeds); err != nil {
		t.Fatalf("SeedPending: %v", err)
	}
	mustCreate(t, created, ds...)
	for i, d := range ds {
		diffStruct(t, "seeds["+d.ID+"].Device", &seeds[i].Device, d)
		diffStruct(t, "seeded "+d.ID, mustDevice(t, seeded, d.ID), mustDevice(t, created, d.ID))
		var got, want *gatehouse.DeviceKey
		inTx(t, seeded, func(tx *store.Tx) (err error) { got, err = tx.FindKey(t.Context(), d.Fingerprint); return err })
		inTx(t, created, func(tx *store.Tx) (err error) { want, err = tx.FindKey(t.Context(), d.Fingerprint); return err })
		diffStruct(t, "seeded key of "+d.ID, got, want)
	}
	ids, total := mustDevices(t, seeded, store.DeviceFilter{State: gatehouse.StatePending})
	wantIDs, _ := mustDevices(t, created, store.DeviceFilter{State: gatehouse.StatePending})
	if total != len(ds) || fmt.Sprint(ids) != fmt.Sprint(wantIDs) {
		t.Errorf("pending list = %v (total %d), want %v", ids, total, wantIDs)
	}
}

// testSeedPendingAllOrNothing: a taken fingerprint fails the whole seed.
func testSeedPendingAllOrNothing(t *testing.T, db *store.DB, _ *clock) {
	a, b := newDevice("dev01"), newDevice("dev02")
	b.Fingerprint = a.Fingerprint
	wantUnique(t, db.SeedPending(t.Context(), seedsFor(a, b)))
	if _, total := mustDevices(t, db, store.DeviceFilter{}); total != 0 {
		t.Fatalf("a failed seed kept %d devices", total)
	}
}

// testSeedPendingMany seeds more than one statement's worth, and a part.
func testSeedPendingMany(t *testing.T, db *store.DB, _ *clock) {
	var ds []*gatehouse.Device
	for i := range 250 {
		ds = append(ds, newDevice(fmt.Sprintf("dev%04d", i)))
	}
	if err := db.SeedPending(t.Context(), seedsFor(ds...)); err != nil {
		t.Fatalf("SeedPending: %v", err)
	}
	if _, total := mustDevices(t, db, store.DeviceFilter{State: gatehouse.StatePending}); total != len(ds) {
		t.Fatalf("seeded %d pending devices, want %d", total, len(ds))
	}
	for _, i := range []int{0, 99, 100, 249} {
		if got := mustDevice(t, db, ds[i].ID); got.Fingerprint != ds[i].Fingerprint || got.MAC != ds[i].MAC {
			t.Errorf("device %d = %+v, want fingerprint %s, MAC %s", i, got, ds[i].Fingerprint, ds[i].MAC)
		}
	}
}
