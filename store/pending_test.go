package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/store"
)

func mustCountPending(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	inTx(t, db, func(tx *store.Tx) (err error) {
		n, err = tx.CountPending(t.Context())
		return err
	})
	return n
}

func testCountPending(t *testing.T, db *store.DB, _ *clock) {
	if n := mustCountPending(t, db); n != 0 {
		t.Fatalf("CountPending on an empty store = %d", n)
	}
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"), newDevice("dev-03"))
	dismissed := gatehouse.StateDismissed
	mustUpdate(t, db, "dev-02", store.DeviceUpdate{State: &dismissed})
	if n := mustCountPending(t, db); n != 2 {
		t.Errorf("CountPending = %d, want 2 (one of three dismissed)", n)
	}
}

func mustPendingFrom(t *testing.T, db *store.DB, addr string) bool {
	t.Helper()
	var from bool
	inTx(t, db, func(tx *store.Tx) (err error) {
		from, err = tx.PendingFrom(t.Context(), addr)
		return err
	})
	return from
}

func testPendingFrom(t *testing.T, db *store.DB, _ *clock) {
	if mustPendingFrom(t, db, "192.0.2.1") {
		t.Fatal("PendingFrom on an empty store = true")
	}
	a, b, c := newDevice("dev-01"), newDevice("dev-02"), newDevice("dev-03")
	a.SourceAddr, b.SourceAddr, c.SourceAddr = "192.0.2.1", "192.0.2.2", "2001:db8::1"
	mustCreate(t, db, a, b, c)
	approved := gatehouse.StateApproved
	mustUpdate(t, db, "dev-02", store.DeviceUpdate{State: &approved})
	// Exact addresses, pending devices only: an approved device's address
	// and a neighbour of a pending one's hold none.
	for addr, want := range map[string]bool{"192.0.2.1": true, "192.0.2.2": false, "192.0.2.10": false,
		"2001:db8::1": true, "2001:db8::2": false} {
		if got := mustPendingFrom(t, db, addr); got != want {
			t.Errorf("PendingFrom(%s) = %v, want %v", addr, got, want)
		}
	}
}

func testPendingSeenBefore(t *testing.T, db *store.DB, clk *clock) {
	mustCreate(t, db, newDevice("dev-01")) // seen at t0
	clk.Set(t0.Add(time.Hour))
	mustCreate(t, db, newDevice("dev-02"), newDevice("dev-03")) // seen at t0+1h
	clk.Set(t0.Add(2 * time.Hour))
	mustCreate(t, db, newDevice("dev-04")) // seen at t0+2h
	approved := gatehouse.StateApproved
	mustUpdate(t, db, "dev-03", store.DeviceUpdate{State: &approved})
	stale := func(before time.Time, limit int) []string {
		t.Helper()
		var ids []string
		inTx(t, db, func(tx *store.Tx) (err error) {
			ids, err = tx.PendingSeenBefore(t.Context(), before, limit)
			return err
		})
		return ids
	}
	// Strictly before; never a device that is not pending; oldest first.
	if got := stale(t0.Add(2*time.Hour), 10); !slices.Equal(got, []string{"dev-01", "dev-02"}) {
		t.Errorf("PendingSeenBefore(t0+2h) = %v, want [dev-01 dev-02]", got)
	}
	if got := stale(t0.Add(2*time.Hour), 1); !slices.Equal(got, []string{"dev-01"}) {
		t.Errorf("PendingSeenBefore(t0+2h, limit 1) = %v, want [dev-01]", got)
	}
	if got := stale(t0, 10); len(got) != 0 {
		t.Errorf("PendingSeenBefore(t0) = %v, want none", got)
	}
}

func testDeleteDevices(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	ctx := t.Context()
	inTx(t, db, func(tx *store.Tx) error {
		for _, id := range []string{"dev-01", "dev-02"} {
			if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "enrolled"}); err != nil {
				return err
			}
		}
		return tx.CreateSteps(ctx, "dev-01", []gatehouse.StepName{gatehouse.StepDPS})
	})
	mustUseNonce(t, db, "fp-dev-01", "n1", t0.Add(time.Hour), true)
	mustUseNonce(t, db, "fp-dev-02", "n1", t0.Add(time.Hour), true)

	inTx(t, db, func(tx *store.Tx) error { return tx.DeleteDevices(ctx, []string{"dev-01", "no-such-device"}) })

	wantCode(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Device(ctx, "dev-01")
		return err
	}), gatehouse.ENOTFOUND)
	wantCode(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.FindKey(ctx, "fp-dev-01")
		return err
	}), gatehouse.ENOTFOUND)
	var evs []gatehouse.Event
	inTx(t, db, func(tx *store.Tx) (err error) {
		evs, err = tx.Events(ctx, "dev-01")
		return err
	})
	if len(evs) != 0 {
		t.Errorf("events of a deleted device remain: %+v", evs)
	}
	if steps := mustSteps(t, db, "dev-01"); len(steps) != 0 {
		t.Errorf("steps of a deleted device remain: %+v", steps)
	}
	// The deleted key's nonce stays until it expires (nonces are keyed by
	// expiry, migration 0018), still refusing a replay; the other device's
	// nonce, key, timeline and row are untouched.
	mustUseNonce(t, db, "fp-dev-01", "n1", t0.Add(time.Hour), false)
	mustUseNonce(t, db, "fp-dev-02", "n1", t0.Add(time.Hour), false)
	if d := mustDevice(t, db, "dev-02"); d.Fingerprint != "fp-dev-02" {
		t.Errorf("the other device changed: %+v", d)
	}
	inTx(t, db, func(tx *store.Tx) (err error) {
		evs, err = tx.Events(ctx, "dev-02")
		return err
	})
	if len(evs) != 1 {
		t.Errorf("the other device's timeline = %+v, want its one event", evs)
	}
	inTx(t, db, func(tx *store.Tx) error { return tx.DeleteDevices(ctx, nil) })
}
