package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"strings"
	"testing"

	"gatehouse/protocol"
)

// FuzzSeal drives the bundle sealing both ways. For any seal key,
// CheckSealKey accepts it exactly when Seal can seal to it. Sealed to the
// device's own key, every plaintext opens to itself under its field and
// under no other. Arbitrary ciphertexts open to nothing: the only ones
// that open are the seeds, to their seed plaintext, and an opened plaintext
// is exactly the ciphertext less the HPKE overhead. No error repeats a
// plaintext.
func FuzzSeal(f *testing.F) {
	device := ed25519.NewKeyFromSeed(seedBytes("device key")[:ed25519.SeedSize])
	priv, err := protocol.DeriveSealKey(device)
	if err != nil {
		f.Fatal(err)
	}
	pub := priv.PublicKey().Bytes()
	for _, field := range []string{protocol.FieldDPSPrimaryKey, protocol.FieldPrivateKey, "x"} {
		ct, err := protocol.Seal(pub, field, seedPlaintext(field))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pub, field, []byte("a secret of some length"), ct)
	}
	f.Add(make([]byte, 32), protocol.FieldDPSPrimaryKey, []byte("zero key"), []byte{})
	low := make([]byte, 32)
	low[0] = 1 // u = 1, a point of order 4
	f.Add(low, "", []byte{}, make([]byte, 48))
	f.Add(pub[:31], "f", []byte("short key"), []byte{})

	f.Fuzz(func(t *testing.T, sealKey []byte, field string, pt, ct []byte) {
		if len(field) > 64 {
			return // field names are the code's constants, and errors name them
		}
		sealed, err := protocol.Seal(sealKey, "f", pt)
		if checkErr := protocol.CheckSealKey(sealKey); (checkErr == nil) != (err == nil) {
			t.Fatalf("CheckSealKey says %v, Seal says %v", checkErr, err)
		}
		if err != nil {
			if sealed != nil {
				t.Fatal("Seal failed and returned a ciphertext too")
			}
			checkNoEcho(t, err.Error(), pt)
		}
		mine, err := protocol.Seal(pub, field, pt)
		if field == "" {
			if err == nil {
				t.Fatal("sealed under an empty field name")
			}
		} else if err != nil {
			t.Fatalf("Seal to the device's key: %v", err)
		} else {
			checkOpens(t, priv, field, mine, pt)
		}
		opened, err := protocol.Open(priv, field, ct)
		if err != nil {
			if opened != nil {
				t.Fatal("Open failed and returned a plaintext too")
			}
			if !strings.Contains(field, string(pt)) { // the field's name is no secret
				checkNoEcho(t, err.Error(), pt)
			}
			return
		}
		if !bytes.Equal(opened, seedPlaintext(field)) || len(opened) != len(ct)-32-16 {
			t.Fatalf("opened a ciphertext no one sealed: %d bytes from %d", len(opened), len(ct))
		}
	})
}

func seedPlaintext(field string) []byte { return []byte("seed plaintext for " + field) }

// checkOpens: what was sealed under field opens to itself under field
// only.
func checkOpens(t *testing.T, priv hpke.PrivateKey, field string, ct, pt []byte) {
	t.Helper()
	if got, err := protocol.Open(priv, field, ct); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("sealed under %q, opened: %v", field, err)
	}
	if _, err := protocol.Open(priv, field+"\x00", ct); err == nil {
		t.Fatalf("sealed under %q, opened under another field", field)
	}
}
