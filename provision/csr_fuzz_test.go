package provision

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"slices"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/vault"
)

// FuzzCheckCSR feeds arbitrary text to the server's CSR checks: the one an
// enrollment and a renewal pass, the key comparison a renewal makes against
// the enrolled CSR, and the PKI client's public-key reader. A CSR that
// checkCSR accepts is exactly one PEM CERTIFICATE REQUEST that parses and is
// signed by its own key, and vault reads the same key from it; a renewal
// keeps it exactly when its key is the enrolled CSR's, whichever of the two
// is the fuzzed one, and refuses it as forbidden otherwise. A refusal is
// invalid with a fixed message that repeats nothing of the input.
func FuzzCheckCSR(f *testing.F) {
	seed := sha256.Sum256([]byte("gatehouse fuzz seed: provision device key"))
	certKey, err := protocol.DeriveCertKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		f.Fatal(err)
	}
	enrolled, err := protocol.CreateCSR(certKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enrolled)
	f.Add(fuzzCSR(f, certKey, "another name")) // same key, another CSR
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []crypto.Signer{rk, ed, p384} {
		f.Add(fuzzCSR(f, k, "gw-1"))
	}
	block, _ := pem.Decode([]byte(enrolled))
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-1] ^= 1
	f.Add(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered})))
	f.Add(string(pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: block.Bytes})))
	f.Add(enrolled + "trailing text")
	f.Add("")

	f.Fuzz(func(t *testing.T, csr string) {
		if err := checkCSR(csr); err != nil {
			checkCSRRefusal(t, err)
			return
		}
		if csr == "" {
			return
		}
		pub := checkCSRParses(t, csr)
		if vpub, err := vault.CSRPublicKey(csr); err != nil || !samePublicKey(vpub, pub) {
			t.Fatalf("vault reads another key from an accepted CSR (%v)", err)
		}
		same := samePublicKey(pub, certKey.Public())
		for _, c := range []struct{ enrolled, asked string }{{csr, csr}, {enrolled, csr}, {csr, enrolled}} {
			got, err := renewCSR(&gatehouse.DeviceKey{CSR: c.enrolled}, c.asked)
			want := c.enrolled == c.asked || same
			switch {
			case want && (err != nil || got != c.asked):
				t.Fatalf("a renewal with a CSR of the enrolled key: %v", err)
			case !want && gatehouse.ErrorCode(err) != gatehouse.EFORBIDDEN:
				t.Fatalf("a renewal with a CSR of another key: %q, %v; want forbidden", got, err)
			}
		}
		// With one of the two CSRs missing, the other is the one signed.
		for _, c := range []struct{ enrolled, asked string }{{csr, ""}, {"", csr}} {
			if got, err := renewCSR(&gatehouse.DeviceKey{CSR: c.enrolled}, c.asked); err != nil || got != csr {
				t.Fatalf("a renewal missing one CSR: %v", err)
			}
		}
	})
}

func checkCSRRefusal(t *testing.T, err error) {
	t.Helper()
	known := []string{"csr is not a PEM CERTIFICATE REQUEST", "csr does not parse", "csr signature does not verify"}
	var gerr *gatehouse.Error
	if !errors.As(err, &gerr) || gerr.Code != gatehouse.EINVALID || !slices.Contains(known, gerr.Message) {
		t.Fatalf("refusal %v is not one of the fixed invalid messages", err)
	}
}

// checkCSRParses proves an accepted CSR without checkCSR, and returns its key.
func checkCSRParses(t *testing.T, csr string) crypto.PublicKey {
	t.Helper()
	block, _ := pem.Decode([]byte(csr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatal("accepted a CSR that is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || req.CheckSignature() != nil {
		t.Fatalf("accepted a CSR that does not parse or verify: %v", err)
	}
	if _, ok := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok {
		t.Fatalf("accepted a CSR of a %T key, which nothing can compare", req.PublicKey)
	}
	return req.PublicKey
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func fuzzCSR(f *testing.F, key crypto.Signer, cn string) string {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		f.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}
