package protocol_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"gatehouse/protocol"
)

// lowOrderX25519 are the well-known small-order Curve25519 u-coordinates
// (RFC 7748 §6.1 warns of them), with the non-canonical encodings u+p and the
// ignored top bit set, which X25519 reads as the same points.
var lowOrderX25519 = []struct{ name, hex string }{
	{"zero", "0000000000000000000000000000000000000000000000000000000000000000"},
	{"one", "0100000000000000000000000000000000000000000000000000000000000000"},
	{"order 8 a", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"},
	{"order 8 b", "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"},
	{"p-1", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
	{"p (zero again)", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
	{"p+1 (one again)", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
	{"zero, top bit", "0000000000000000000000000000000000000000000000000000000000000080"},
	{"p-1, top bit", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
}

func TestCheckSealKeyRefusesLowOrder(t *testing.T) {
	for _, k := range lowOrderX25519 {
		t.Run(k.name, func(t *testing.T) {
			pub, err := hex.DecodeString(k.hex)
			if err != nil {
				t.Fatal(err)
			}
			assertAlwaysZero(t, pub)
			err = protocol.CheckSealKey(pub)
			if err == nil || !strings.Contains(err.Error(), "low-order") {
				t.Fatalf("CheckSealKey = %v, want a low-order error", err)
			}
			if _, err := protocol.Seal(pub, protocol.FieldPrivateKey, []byte("x")); err == nil {
				t.Error("test setup: Seal succeeded, so the key is not degenerate")
			}
		})
	}
}

// assertAlwaysZero checks the table: X25519 with fresh scalars gives zero.
func assertAlwaysZero(t *testing.T, pub []byte) {
	t.Helper()
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.ECDH(p); err == nil {
			t.Fatal("test setup: X25519 with this point is not always zero")
		}
	}
}

func TestCheckSealKeyShape(t *testing.T) {
	for name, pub := range map[string][]byte{"empty": nil, "short": make([]byte, 31), "long": make([]byte, 33)} {
		if err := protocol.CheckSealKey(pub); err == nil || !strings.Contains(err.Error(), "32-byte") {
			t.Errorf("%s: CheckSealKey = %v, want a size error", name, err)
		}
	}
}

func TestCheckSealKeyAcceptsRealKeys(t *testing.T) {
	for _, k := range supportedKeys(t) {
		priv, err := protocol.DeriveSealKey(k.key)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.CheckSealKey(priv.PublicKey().Bytes()); err != nil {
			t.Errorf("%s: CheckSealKey(derived key) = %v", k.name, err)
		}
	}
	for range 32 {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.CheckSealKey(k.PublicKey().Bytes()); err != nil {
			t.Fatalf("CheckSealKey(%x) = %v", k.PublicKey().Bytes(), err)
		}
	}
}
