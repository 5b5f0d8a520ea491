package protocol_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gatehouse/protocol"
)

// A request signed by the openssl command line must verify, so a shell
// script can talk to the server and the signature scheme is the standard one.
func TestVerifyAcceptsOpenSSLSignatures(t *testing.T) {
	needOpenSSL(t)
	cases := []struct {
		name   string
		keygen []string
		sign   []string
	}{
		{"rsa-3072", opensslRSA3072PKCS8, []string{"dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "msg"}},
		{"ecdsa-p256", opensslP256SEC1, []string{"dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "msg"}},
		{"ed25519", opensslEd25519, []string{"pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "msg", "-out", "sig"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := opensslSignedRequest(t, c.keygen, c.sign)
			v := &protocol.Verifier{Nonces: protocol.NewNonceCache()}
			signed, err := v.Verify(context.Background(), r, []byte("{}"))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if signed.KeyType != c.name {
				t.Errorf("KeyType = %q, want %q", signed.KeyType, c.name)
			}
		})
	}
}

func opensslSignedRequest(t *testing.T, keygen, sign []string) *http.Request {
	t.Helper()
	dir := t.TempDir()
	openssl(t, dir, keygen...)
	openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der")
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "00112233445566778899aabbccddeeff"
	msg := protocol.StringToSign(http.MethodPost, protocol.PathEnroll, []byte("{}"), ts, nonce)
	writeFile(t, filepath.Join(dir, "msg"), msg)
	openssl(t, dir, sign...)
	r := httptest.NewRequest(http.MethodPost, protocol.PathEnroll, nil)
	r.Header.Set(protocol.HeaderKey, base64.StdEncoding.EncodeToString(readFile(t, filepath.Join(dir, "pub.der"))))
	r.Header.Set(protocol.HeaderTimestamp, ts)
	r.Header.Set(protocol.HeaderNonce, nonce)
	r.Header.Set(protocol.HeaderSignature, base64.StdEncoding.EncodeToString(readFile(t, filepath.Join(dir, "sig"))))
	return r
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStringToSignLayout(t *testing.T) {
	got := string(protocol.StringToSign("POST", "/device/v1/enroll?a=1", []byte("abc"), "1700000000", "00112233445566778899aabbccddeeff"))
	want := "gatehouse-v1\nPOST\n/device/v1/enroll?a=1\n" +
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n1700000000\n00112233445566778899aabbccddeeff"
	if got != want {
		t.Errorf("StringToSign =\n%q\nwant\n%q", got, want)
	}
}
