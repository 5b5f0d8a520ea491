package agent

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
)

// fuzzIdentity is one device identity, the same in every fuzz worker so a
// bundle sealed in one opens in the others.
func fuzzIdentity(f *testing.F) *identity {
	seed := sha256.Sum256([]byte("gatehouse fuzz seed: agent device key"))
	id, err := newIdentity("fuzz", ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		f.Fatal(err)
	}
	return id
}

// FuzzOpenBundle feeds the agent's bundle unsealer arbitrary names, DPS
// fields, certificates and sealed fields, some sealed to the device and
// some not. A bundle it opens has a valid name; its DPS credentials are
// complete, each value safe for an env file, the key exactly what was
// sealed, and the env file reads back as the same four values; its private
// key is the sealed one or, for a certificate of the derived certificate
// key, that key. A bundle it refuses gives nothing back, and no error
// repeats a sealed secret.
func FuzzOpenBundle(f *testing.F) {
	id := fuzzIdentity(f)
	pub := id.sealKey.PublicKey().Bytes()
	seal := func(field, secret string) []byte {
		ct, err := protocol.Seal(pub, field, []byte(secret))
		if err != nil {
			f.Fatal(err)
		}
		return ct
	}
	mine, other := fuzzCert(f, &id.certKey.PublicKey), fuzzCert(f, nil)
	dpsKey := "c2VjcmV0IHN5bW1ldHJpYyBrZXkgb2YgdGhlIGdhdGV3YXk="
	none := []byte{}
	f.Add("gw-1", "0ne00ABCDEF", "", "", seal(protocol.FieldDPSPrimaryKey, dpsKey), none, none)
	f.Add("gw-1", "0ne00ABCDEF", "gw-1-reg", mine, seal(protocol.FieldDPSPrimaryKey, dpsKey), none, none)
	f.Add("gw-2", "", "", other, none, seal(protocol.FieldPrivateKey, "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n"), none)
	f.Add("gw-3", "", "", other, none, none, none)
	f.Add("gw-4", "0ne00ABCDEF", "", "", none, none, []byte("a key with spaces and a\nnewline"))
	f.Add("gw-5", "0ne00ABCDEF", "", "", seal(protocol.FieldPrivateKey, dpsKey), none, none) // wrong field
	f.Add("GW 6", "", "", "", none, none, none)
	f.Add("gw-7", "", "gw-7", "", none, none, none)

	f.Fuzz(func(t *testing.T, name, scope, regID, cert string, dpsCT, keyCT, secret []byte) {
		if len(dpsCT) == 0 && len(secret) > 0 {
			dpsCT = seal(protocol.FieldDPSPrimaryKey, string(secret))
		}
		b := &protocol.Bundle{Name: name, DPSIDScope: scope, DPSRegistrationID: regID, Certificate: cert,
			Sealed: map[string][]byte{protocol.FieldDPSPrimaryKey: dpsCT, protocol.FieldPrivateKey: keyCT}}
		dpsPT, _ := protocol.Open(id.sealKey, protocol.FieldDPSPrimaryKey, dpsCT)
		keyPT, _ := protocol.Open(id.sealKey, protocol.FieldPrivateKey, keyCT)
		c, err := openBundle(b, id)
		if err != nil {
			if c != nil {
				t.Fatalf("refused with %v but returned credentials", err)
			}
			for _, s := range [][]byte{dpsPT, keyPT} {
				public := strings.Contains(name+scope+regID+cert, string(s))
				if len(s) >= 8 && !public && strings.Contains(err.Error(), string(s)) {
					t.Fatalf("error %q repeats a sealed secret", err)
				}
			}
			return
		}
		if gatehouse.ValidateName(name) != nil || c.name != name || string(c.cert) != cert {
			t.Fatalf("opened a bundle named %q as %q", name, c.name)
		}
		checkDPS(t, b, c, dpsPT)
		checkCertKey(t, id, b, c, keyPT)
	})
}

func checkDPS(t *testing.T, b *protocol.Bundle, c *credentials, key []byte) {
	t.Helper()
	if c.dps == nil {
		if b.DPSIDScope != "" || b.DPSRegistrationID != "" || len(key) != 0 {
			t.Fatal("dropped the DPS credentials of a bundle that had some")
		}
		return
	}
	d := c.dps
	if d.idScope != b.DPSIDScope || d.registrationID != cmp.Or(b.DPSRegistrationID, b.Name) || d.key != string(key) {
		t.Fatalf("DPS credentials %q %q are not the bundle's", d.idScope, d.registrationID)
	}
	want := []string{"DEVICE_NAME=" + c.name, "DPS_ID_SCOPE=" + d.idScope, "DPS_REGISTRATION_ID=" + d.registrationID, "DPS_SYMMETRIC_KEY=" + d.key}
	got := strings.Split(strings.TrimSuffix(string(d.env(c.name)), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("iotedge.env has %d lines, not the four values", len(got))
	}
	for _, v := range []string{d.idScope, d.registrationID, d.key} {
		if !envSafe(v) || strings.ContainsAny(v, "\n\r \"'$`\\#") {
			t.Fatal("a DPS value unsafe in an env file was accepted")
		}
	}
}

// checkCertKey: the key written is the sealed one, else for a
// certificate of the derived key that key, else none.
func checkCertKey(t *testing.T, id *identity, b *protocol.Bundle, c *credentials, sealed []byte) {
	t.Helper()
	switch {
	case len(sealed) > 0:
		if !bytes.Equal(c.key, sealed) {
			t.Fatal("the private key written is not the sealed one")
		}
	case b.Certificate != "":
		block, _ := pem.Decode(c.key)
		if block == nil {
			t.Fatal("no certificate key for the bundle's certificate")
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil || !id.certKey.Equal(key) || matchesKey(b.Certificate, &id.certKey.PublicKey) != nil {
			t.Fatalf("wrote a key for a certificate of another key (%v)", err)
		}
	case c.key != nil:
		t.Fatal("wrote a private key the bundle did not have")
	}
}

// fuzzCert is a PEM certificate for pub (a fresh key when nil).
func fuzzCert(f *testing.F, pub *ecdsa.PublicKey) string {
	ca, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	if pub == nil {
		pub = &ca.PublicKey
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw-1"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, ca)
	if err != nil {
		f.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
