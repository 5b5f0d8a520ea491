package provision_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/store"
)

// lowOrderSealKeys are X25519 public keys that every shared secret with is
// zero; see protocol.CheckSealKey.
var lowOrderSealKeys = map[string]string{
	"zero":      "0000000000000000000000000000000000000000000000000000000000000000",
	"one":       "0100000000000000000000000000000000000000000000000000000000000000",
	"order 8":   "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"p-1":       "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"p+1 (one)": "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func TestEnrollRefusesLowOrderSealKey(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	for name, h := range lowOrderSealKeys {
		bad, _ := hex.DecodeString(h)
		g := newGateway(t)
		_, err := tb.svc.Enroll(ctx, g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: bad}, "x")
		wantCode(t, err, gatehouse.EINVALID)
		if msg := gatehouse.ErrorMessage(err); !strings.Contains(msg, "seal_key") || !strings.Contains(msg, "low-order") {
			t.Errorf("%s: message %q does not name seal_key and low-order", name, msg)
		}
	}
	if l, _ := tb.svc.ListDevices(ctx, provision.ListFilter{}); l.Total != 0 {
		t.Fatalf("refused enrollments stored %d devices", l.Total)
	}
}

// A known device that re-enrolls with a degenerate seal key keeps the good
// one it had, so its bundle can still be sealed.
func TestReEnrollRefusesLowOrderSealKey(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	tb.enroll(t, g)
	ctx := context.Background()
	_, err := tb.svc.Enroll(ctx, g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: make([]byte, 32)}, "x")
	wantCode(t, err, gatehouse.EINVALID)
	var k *gatehouse.DeviceKey
	err = tb.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		k, err = tx.FindKey(ctx, g.sig.Fingerprint)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.SealKey, g.sealKey(t)) {
		t.Errorf("stored seal key changed to %x", k.SealKey)
	}
}
