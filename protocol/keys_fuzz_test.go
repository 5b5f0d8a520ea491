package protocol_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse/protocol"
)

// keyTypeName is the documented shape of every KeyType.
var keyTypeName = regexp.MustCompile(`^(rsa-(204[89]|20[5-9][0-9]|2[1-9][0-9]{2}|3[0-9]{3}|40[0-8][0-9]|409[0-6])|ecdsa-p256|ed25519)$`)

// FuzzParsePublicKey feeds arbitrary bytes to the SubjectPublicKeyInfo
// parser that reads every device key header. A key it accepts has a
// supported KeyType, marshals back to exactly the bytes given (one key, one
// fingerprint), round-trips through the PEM Mender is sent, and parses again
// to an equal key. A refusal returns no key and no type, and a message that
// does not repeat the bytes.
func FuzzParsePublicKey(f *testing.F) {
	for _, k := range []crypto.Signer{edKey(f), ecKey(f, elliptic.P256()), ecKey(f, elliptic.P384()), rsaKey(f, 2048)} {
		f.Add(spkiOf(f, k.Public()))
	}
	x, err := ecdh.X25519().NewPrivateKey(seedBytes("x25519"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(spkiOf(f, x.PublicKey()))
	identity := make(ed25519.PublicKey, ed25519.PublicKeySize)
	identity[0] = 1 // the identity point: small order, forgeable
	f.Add(spkiOf(f, identity))
	nonCanonical := bytes.Repeat([]byte{0xff}, ed25519.PublicKeySize)
	nonCanonical[31] = 0x7f // y = 2^255-1, not reduced mod p
	f.Add(spkiOf(f, ed25519.PublicKey(nonCanonical)))
	f.Add([]byte{0x30, 0x00})

	f.Fuzz(func(t *testing.T, spki []byte) {
		pub, keyType, err := protocol.ParsePublicKey(spki)
		if err != nil {
			if pub != nil || keyType != "" {
				t.Fatalf("refused with %v but returned %T %q", err, pub, keyType)
			}
			checkNoEcho(t, err.Error(), spki)
			return
		}
		if !keyTypeName.MatchString(keyType) || protocol.KeyType(pub) != keyType {
			t.Fatalf("accepted a key of type %q (KeyType says %q)", keyType, protocol.KeyType(pub))
		}
		again, err := protocol.MarshalPublicKey(pub)
		if err != nil || !bytes.Equal(again, spki) {
			t.Fatalf("an accepted key marshals to other bytes (%v): two encodings of one identity", err)
		}
		block, rest := pem.Decode([]byte(protocol.PublicKeyPEM(spki)))
		if block == nil || block.Type != "PUBLIC KEY" || !bytes.Equal(block.Bytes, spki) || len(rest) != 0 {
			t.Fatal("PublicKeyPEM does not round-trip")
		}
		pub2, keyType2, err := protocol.ParsePublicKey(again)
		if err != nil || keyType2 != keyType || !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub2) {
			t.Fatalf("an accepted key does not parse again to itself: %v", err)
		}
		if fp := protocol.Fingerprint(spki); len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
			t.Fatalf("fingerprint %q", fp)
		}
	})
}

// FuzzParsePrivateKeyPEM feeds arbitrary files to the agent's device key
// parser, seeded with every accepted format (PKCS#8 for RSA, ECDSA P-256
// and Ed25519; PKCS#1; SEC1 with and without the EC PARAMETERS block
// openssl writes) and with the refused ones (encrypted, certificates,
// public keys, other curves, short RSA, X25519). A key it accepts is a
// supported type; it round-trips through PKCS#8 to an equal key; its public
// half is an SPKI that ParsePublicKey accepts as the same type; and a
// request it signs verifies. A refusal returns no key (not even a typed
// nil) and a message that repeats no base64 line of the file.
func FuzzParsePrivateKeyPEM(f *testing.F) {
	ec := ecKey(f, elliptic.P256())
	rsa2048 := rsaKey(f, 2048)
	for _, k := range []crypto.Signer{edKey(f), ec, rsa2048, ecKey(f, elliptic.P384())} {
		f.Add(pemPKCS8(f, k))
	}
	f.Add(pemPKCS1(rsa2048))
	f.Add(pemSEC1(f, ec))
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	f.Add(append(params, pemSEC1(f, ec)...))
	x, err := ecdh.X25519().NewPrivateKey(seedBytes("x25519"))
	if err != nil {
		f.Fatal(err)
	}
	xder, err := x509.MarshalPKCS8PrivateKey(x)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: xder}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spkiOf(f, ec.Public())}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}))
	f.Add([]byte(" \n\t"))

	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := protocol.ParsePrivateKeyPEM(data)
		if err != nil {
			if key != nil {
				t.Fatalf("refused with %v but returned a %T", err, key)
			}
			checkNoEcho(t, err.Error(), base64Lines(data)...)
			return
		}
		checkDeviceKey(t, key)
	})
}

// checkDeviceKey proves an accepted device key usable for everything the
// agent does with it.
func checkDeviceKey(t *testing.T, key crypto.Signer) {
	t.Helper()
	keyType := protocol.KeyType(key.Public())
	if !keyTypeName.MatchString(keyType) {
		t.Fatalf("accepted a %T of type %q", key, keyType)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("an accepted key does not marshal: %v", err)
	}
	again, err := protocol.ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil || !key.(interface{ Equal(crypto.PrivateKey) bool }).Equal(again) {
		t.Fatalf("an accepted key does not round-trip through PKCS#8: %v", err)
	}
	spki, err := protocol.SignerPublicSPKI(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, kt, err := protocol.ParsePublicKey(spki); err != nil || kt != keyType {
		t.Fatalf("the public half of an accepted %s key: %q, %v", keyType, kt, err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://gatehouse.invalid"+protocol.PathEnroll, nil)
	body := []byte(`{"mac":"02:00:00:00:00:01"}`)
	if err := protocol.SignRequest(req, body, key, fuzzNow); err != nil {
		t.Fatalf("an accepted key does not sign: %v", err)
	}
	v := &protocol.Verifier{Nonces: protocol.NewNonceCache(), Now: func() time.Time { return fuzzNow }}
	if _, err := v.Verify(context.Background(), req, body); err != nil {
		t.Fatalf("a request signed by an accepted key does not verify: %v", err)
	}
	switch key.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		t.Fatalf("accepted a %T", key)
	}
}

// base64Lines are the lines of a PEM file that carry its key material.
func base64Lines(data []byte) [][]byte {
	var out [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if !bytes.HasPrefix(line, []byte("-----")) && !bytes.Contains(line, []byte(":")) {
			out = append(out, line)
		}
	}
	return out
}
