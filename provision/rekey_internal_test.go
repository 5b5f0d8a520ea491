package provision

import (
	"context"
	"path/filepath"
	"testing"

	"gatehouse"
	"gatehouse/store"
)

// TestIsRekeyCandidate is the check an automatic approval (an allowlist)
// must make: only a device enrolled with the MAC of an approved gateway is
// a candidate, whatever else it shares.
func TestIsRekeyCandidate(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	add := func(tx *store.Tx, id, mac, fp string, state gatehouse.State) *gatehouse.Device {
		d := &gatehouse.Device{ID: id, State: state, MAC: mac, Fingerprint: fp, VerificationCode: "123456"}
		if err := tx.CreateDevice(ctx, d, gatehouse.DeviceKey{Fingerprint: fp, KeyType: "ed25519", PublicKey: []byte(fp), SealKey: []byte("s")}); err != nil {
			t.Fatal(err)
		}
		if state != gatehouse.StatePending {
			name := "gw-" + id
			if err := tx.UpdateDevice(ctx, id, store.DeviceUpdate{Name: &name}); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	err = db.InTx(ctx, func(tx *store.Tx) error {
		add(tx, "gw", "02:00:00:00:00:01", fp('a'), gatehouse.StateConfigured)
		add(tx, "dis", "02:00:00:00:00:02", fp('b'), gatehouse.StateDismissed)
		for id, mac := range map[string]string{"cand": "02:00:00:00:00:01", "other": "02:00:00:00:00:02", "new": "02:00:00:00:00:03"} {
			d := add(tx, id, mac, fp(id[0]+1), gatehouse.StatePending)
			if err := markRekeyCandidate(ctx, tx, d, "ed25519"); err != nil {
				return err
			}
		}
		for id, want := range map[string]bool{"cand": true, "other": false, "new": false, "gw": false} {
			if got, err := isRekeyCandidate(ctx, tx, id); err != nil || got != want {
				t.Errorf("isRekeyCandidate(%s) = %v, %v; want %v", id, got, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func fp(c byte) string {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return string(b)
}
