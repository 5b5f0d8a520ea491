package store_test

import (
	"errors"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/store"
)

func testAllowlist(t *testing.T, db *store.DB, clk *clock) {
	ctx := t.Context()
	mustCreate(t, db, newDevice("dev-01"))
	inTx(t, db, func(tx *store.Tx) error {
		for _, e := range []*gatehouse.AllowlistEntry{
			{MAC: "02:00:00:00:00:0a", Name: "gw-a", Labels: map[string]string{"site": "a"}, ImportedBy: "alice"},
			{MAC: "02:00:00:00:00:0b", Name: "gw-b", ImportedBy: "alice"},
		} {
			if err := tx.AddAllowlistEntry(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	for _, dup := range []*gatehouse.AllowlistEntry{
		{MAC: "02:00:00:00:00:0a", Name: "gw-c", ImportedBy: "bob"},
		{MAC: "02:00:00:00:00:0c", Name: "gw-b", ImportedBy: "bob"},
	} {
		err := db.InTx(ctx, func(tx *store.Tx) error { return tx.AddAllowlistEntry(ctx, dup) })
		if !errors.Is(err, store.ErrUnique) {
			t.Errorf("adding %s as %s again: %v, want ErrUnique", dup.MAC, dup.Name, err)
		}
	}
	clk.Set(t0.Add(time.Hour))
	var first, second bool
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		if first, err = tx.ClaimAllowlistEntry(ctx, "02:00:00:00:00:0a", "dev-01", "fp-dev-01"); err != nil {
			return err
		}
		second, err = tx.ClaimAllowlistEntry(ctx, "02:00:00:00:00:0a", "dev-02", "fp-dev-02")
		return err
	})
	if !first || second {
		t.Fatalf("claims = %v, %v; want only the first to pin the entry", first, second)
	}
	var list []gatehouse.AllowlistEntry
	var total int
	var byName, byDevice *gatehouse.AllowlistEntry
	var other string
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		if list, total, err = tx.Allowlist(ctx, 0, 0); err != nil {
			return err
		}
		if byName, err = tx.AllowlistByName(ctx, "gw-b"); err != nil {
			return err
		}
		if byDevice, err = tx.AllowlistByDevice(ctx, "dev-01"); err != nil {
			return err
		}
		other, err = tx.DeviceWithMAC(ctx, "02:00:00:00:00:01", "")
		return err
	})
	a := list[0]
	if total != 2 || a.MAC != "02:00:00:00:00:0a" || a.DeviceID != "dev-01" || a.Fingerprint != "fp-dev-01" ||
		a.UsedAt == nil || !a.UsedAt.Equal(at(time.Hour)) || !a.ImportedAt.Equal(at(0)) || a.Labels["site"] != "a" {
		t.Fatalf("Allowlist = %d %+v", total, list)
	}
	if list[1].Used() || byName.MAC != "02:00:00:00:00:0b" || byDevice.Name != "gw-a" || other != "dev-01" {
		t.Fatalf("unused %+v, by name %+v, by device %+v, device of MAC %q", list[1], byName, byDevice, other)
	}
	inTx(t, db, func(tx *store.Tx) error {
		if id, err := tx.DeviceWithMAC(ctx, "02:00:00:00:00:01", "dev-01"); err != nil || id != "" {
			t.Errorf("DeviceWithMAC except its own device = %q, %v", id, err)
		}
		return tx.DeleteAllowlistEntry(ctx, "02:00:00:00:00:0b")
	})
	err := db.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteAllowlistEntry(ctx, "02:00:00:00:00:0b") })
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		t.Fatalf("deleting again: %v, want not found", err)
	}
}
