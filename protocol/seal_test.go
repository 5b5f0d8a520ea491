package protocol_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hpke"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gatehouse/protocol"
)

func sealPublic(t *testing.T, key hpke.PrivateKey) []byte {
	t.Helper()
	return key.PublicKey().Bytes()
}

func TestDeriveSealKeyDeterministic(t *testing.T) {
	seen := map[string]string{}
	for _, k := range supportedKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			a, err := protocol.DeriveSealKey(k.key)
			if err != nil {
				t.Fatalf("DeriveSealKey: %v", err)
			}
			// A restarted agent re-reads the PEM file; the key must come out the same.
			reread, err := protocol.ParsePrivateKeyPEM(pemPKCS8(t, k.key))
			if err != nil {
				t.Fatal(err)
			}
			b, err := protocol.DeriveSealKey(reread)
			if err != nil {
				t.Fatal(err)
			}
			pa, pb := sealPublic(t, a), sealPublic(t, b)
			if !bytes.Equal(pa, pb) || len(pa) != 32 {
				t.Fatalf("seal keys differ or wrong size: %x vs %x", pa, pb)
			}
			if a.KEM().ID() != hpke.DHKEM(ecdh.X25519()).ID() {
				t.Errorf("KEM = %#x, want DHKEM(X25519)", a.KEM().ID())
			}
			if other, dup := seen[string(pa)]; dup {
				t.Errorf("same seal key as %s", other)
			}
			seen[string(pa)] = k.name
		})
	}
}

// Mender 3.x keys are PKCS#1 files; converting one to PKCS#8 must not
// change the seal key, or a bundle sealed before the change is lost.
func TestDeriveSealKeySameAcrossPEMFormats(t *testing.T) {
	rsa := rsaKey(t, 2048)
	ec := ecKey(t, elliptic.P256())
	for name, pems := range map[string][2][]byte{
		"rsa":   {pemPKCS1(rsa), pemPKCS8(t, rsa)},
		"ecdsa": {pemSEC1(t, ec), pemPKCS8(t, ec)},
	} {
		var pubs [2][]byte
		for i, data := range pems {
			key, err := protocol.ParsePrivateKeyPEM(data)
			if err != nil {
				t.Fatal(err)
			}
			seal, err := protocol.DeriveSealKey(key)
			if err != nil {
				t.Fatal(err)
			}
			pubs[i] = sealPublic(t, seal)
		}
		if !bytes.Equal(pubs[0], pubs[1]) {
			t.Errorf("%s: seal key depends on the PEM format", name)
		}
	}
}

func TestSealOpen(t *testing.T) {
	device, err := protocol.DeriveSealKey(edKey(t))
	if err != nil {
		t.Fatal(err)
	}
	other, err := protocol.DeriveSealKey(ecKey(t, elliptic.P256()))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("HostName=hub;SharedAccessKey=c2VjcmV0")
	ct, err := protocol.Seal(sealPublic(t, device), protocol.FieldDPSPrimaryKey, secret)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Contains(ct, secret) {
		t.Fatal("ciphertext contains the plaintext")
	}
	got, err := protocol.Open(device, protocol.FieldDPSPrimaryKey, ct)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v; want the secret back", got, err)
	}
	if _, err := protocol.Open(device, protocol.FieldPrivateKey, ct); err == nil {
		t.Error("Open succeeded under another field name")
	}
	if _, err := protocol.Open(other, protocol.FieldDPSPrimaryKey, ct); err == nil {
		t.Error("Open succeeded with another device's key")
	}
	for _, i := range []int{0, 31, 32, len(ct) - 1} {
		bad := bytes.Clone(ct)
		bad[i] ^= 1
		if _, err := protocol.Open(device, protocol.FieldDPSPrimaryKey, bad); err == nil {
			t.Errorf("Open accepted a ciphertext with byte %d flipped", i)
		}
	}
	for _, bad := range [][]byte{nil, ct[:32], ct[:len(ct)-1]} {
		if _, err := protocol.Open(device, protocol.FieldDPSPrimaryKey, bad); err == nil {
			t.Errorf("Open accepted a %d-byte ciphertext", len(bad))
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	device, err := protocol.DeriveSealKey(edKey(t))
	if err != nil {
		t.Fatal(err)
	}
	a, err := protocol.Seal(sealPublic(t, device), protocol.FieldPrivateKey, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := protocol.Seal(sealPublic(t, device), protocol.FieldPrivateKey, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two seals of the same plaintext are identical")
	}
}

func TestSealRejectsMalformedPublicKey(t *testing.T) {
	for name, pub := range map[string][]byte{
		"empty":      nil,
		"short":      make([]byte, 31),
		"long":       make([]byte, 33),
		"low order":  make([]byte, 32),
		"spki bytes": spkiOf(t, edKey(t).Public()),
	} {
		_, err := protocol.Seal(pub, protocol.FieldPrivateKey, []byte("secret"))
		if err == nil {
			t.Errorf("%s: Seal succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), "secret") && name != "low order" {
			t.Errorf("%s: error leaks plaintext: %v", name, err)
		}
	}
	device, err := protocol.DeriveSealKey(edKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.Seal(sealPublic(t, device), "", []byte("x")); err == nil {
		t.Error("Seal accepted an empty field name")
	}
}

// opaqueSigner hides its private key, like a key held in a TPM.
type opaqueSigner struct{ crypto.Signer }

func TestOpaqueSigner(t *testing.T) {
	key := opaqueSigner{ecKey(t, elliptic.P256())}
	r := httptest.NewRequest(http.MethodPost, protocol.PathEnroll, nil)
	if err := protocol.SignRequest(r, nil, key, time.Now()); err != nil {
		t.Fatalf("SignRequest with an opaque signer: %v", err)
	}
	if _, err := (&protocol.Verifier{Nonces: protocol.NewNonceCache()}).Verify(context.Background(), r, nil); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	_, err := protocol.DeriveSealKey(key)
	if err == nil || !strings.Contains(err.Error(), "exportable") {
		t.Errorf("DeriveSealKey(opaque) err = %v, want a clear 'exportable' error", err)
	}
}
