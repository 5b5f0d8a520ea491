package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// testSavepointParts runs four parts in one transaction: a part that fails
// by itself and one whose statement the database refuses (which, on
// PostgreSQL, aborts the transaction until undone) leave nothing, and the
// parts after them still commit.
func testSavepointParts(t *testing.T, db *store.DB, clk *clock) {
	ctx := t.Context()
	mustCreate(t, db, newDevice("dev-00"))
	refused := errors.New("refused by the part")
	var fnErrs []error
	inTx(t, db, func(tx *store.Tx) error {
		parts := []func(*store.Tx) error{
			func(tx *store.Tx) error {
				return tx.CreateDevice(ctx, newDevice("dev-01"), newKey(newDevice("dev-01")))
			},
			func(tx *store.Tx) error {
				if err := tx.CreateDevice(ctx, newDevice("dev-02"), newKey(newDevice("dev-02"))); err != nil {
					return err
				}
				return refused
			},
			func(tx *store.Tx) error {
				if err := tx.CreateSteps(ctx, "dev-01", []gatehouse.StepName{gatehouse.StepVault}); err != nil {
					return err
				}
				d := newDevice("dev-03")
				d.Fingerprint = "fp-dev-00" // taken: the database refuses it
				return tx.CreateDevice(ctx, d, newKey(newDevice("dev-00")))
			},
			func(tx *store.Tx) error {
				return tx.CreateDevice(ctx, newDevice("dev-04"), newKey(newDevice("dev-04")))
			},
		}
		for _, p := range parts {
			fnErr, txErr := tx.Savepoint(ctx, p)
			if txErr != nil {
				return txErr
			}
			fnErrs = append(fnErrs, fnErr)
		}
		return nil
	})
	if fnErrs[0] != nil || !errors.Is(fnErrs[1], refused) || fnErrs[2] == nil || fnErrs[3] != nil {
		t.Fatalf("parts' errors %v; want nil, the part's own, the database's, nil", fnErrs)
	}
	_, total := mustDevices(t, db, store.DeviceFilter{})
	if total != 3 {
		t.Errorf("%d devices, want 3 (dev-00, dev-01, dev-04)", total)
	}
	for _, id := range []string{"dev-02", "dev-03"} {
		wantCode(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error { _, err := tx.Device(ctx, id); return err }), gatehouse.ENOTFOUND)
	}
	if s := mustSteps(t, db, "dev-01"); len(s) != 0 {
		t.Errorf("dev-01 has steps %v from the part that failed", stepNames(s))
	}
	mustDevice(t, db, "dev-04")
}

// testSavepointRollsBackWithTx: parts that succeeded are undone with the
// transaction they share.
func testSavepointRollsBackWithTx(t *testing.T, db *store.DB, clk *clock) {
	ctx := t.Context()
	cause := errors.New("the shared transaction fails")
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if fnErr, txErr := tx.Savepoint(ctx, func(tx *store.Tx) error {
			return tx.CreateDevice(ctx, newDevice("dev-01"), newKey(newDevice("dev-01")))
		}); fnErr != nil || txErr != nil {
			t.Fatalf("part: %v, %v", fnErr, txErr)
		}
		return cause
	})
	if !errors.Is(err, cause) {
		t.Fatalf("InTx = %v, want %v", err, cause)
	}
	wantCode(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error { _, err := tx.Device(ctx, "dev-01"); return err }), gatehouse.ENOTFOUND)
}

// testStepStates reads a device's state and reason with its steps' states.
func testStepStates(t *testing.T, db *store.DB, clk *clock) {
	ctx := t.Context()
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	reason, state := "vault: refused", gatehouse.StateFailed
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{State: &state, Reason: &reason})
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.CreateSteps(ctx, "dev-01", []gatehouse.StepName{gatehouse.StepVault, gatehouse.StepDPS}); err != nil {
			return err
		}
		return tx.FinishStep(ctx, "dev-01", gatehouse.StepDPS, map[string]string{"k": "v"}, nil)
	})
	type read struct {
		state  gatehouse.State
		reason string
		steps  []gatehouse.Step
		err    error
	}
	get := func(id string) (r read) {
		r.err = txErr(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
			r.state, r.reason, r.steps, err = tx.StepStates(ctx, id)
			return err
		})
		return r
	}
	want := []gatehouse.Step{{Name: gatehouse.StepDPS, State: gatehouse.StepSucceeded}, {Name: gatehouse.StepVault, State: gatehouse.StepPending}}
	if r := get("dev-01"); r.err != nil || r.state != state || r.reason != reason || !reflect.DeepEqual(r.steps, want) {
		t.Errorf("StepStates(dev-01) = %q, %q, %+v, %v; want %q, %q, %+v", r.state, r.reason, r.steps, r.err, state, reason, want)
	}
	if r := get("dev-02"); r.err != nil || r.state != gatehouse.StatePending || len(r.steps) != 0 {
		t.Errorf("StepStates(dev-02) = %q, %+v, %v; want pending with no steps", r.state, r.steps, r.err)
	}
	wantCode(t, get("dev-99").err, gatehouse.ENOTFOUND)
}

// testAddCertificateOfKey keeps a certificate under the key its device
// holds, and a repeat changes nothing.
func testAddCertificateOfKey(t *testing.T, db *store.DB, clk *clock) {
	ctx := t.Context()
	mustCreate(t, db, newDevice("dev-01"))
	c := gatehouse.DeviceCert{Serial: "aa:01", DeviceID: "dev-01", Origin: gatehouse.CertFromProvision, NotBefore: at(0), NotAfter: at(time.Hour)}
	for range 2 {
		inTx(t, db, func(tx *store.Tx) error { return tx.AddCertificateOfKey(ctx, c) })
	}
	var got []gatehouse.DeviceCert
	inTx(t, db, func(tx *store.Tx) (err error) {
		got, err = tx.Certificates(ctx, "dev-01")
		return err
	})
	if len(got) != 1 || got[0].Fingerprint != "fp-dev-01" || got[0].Serial != c.Serial || !got[0].NotAfter.Equal(c.NotAfter) {
		t.Fatalf("certificates %+v; want aa:01 once, under fp-dev-01", got)
	}
}
