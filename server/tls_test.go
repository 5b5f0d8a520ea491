package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/server"
)

// writeSelfSigned writes a fresh self-signed pair for 127.0.0.1 with the
// given serial and returns its certificate.
func writeSelfSigned(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "gatehouse test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial connects afresh (no session reuse) and returns the serial of
// the certificate the server presents.
func servedSerial(t *testing.T, url string) int64 {
	t.Helper()
	resp, err := insecureClient().Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// insecureClient skips verification: these tests check which certificate
// is served, not the chain (the agent tests cover verification).
func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test inspects the served cert
		DisableKeepAlives: true,
	}}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writeSelfSigned(t, certFile, keyFile, 1)
	cert, err := server.LoadCertificate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tb := setupWith(t, setupOpts{tls: cert})

	t.Run("HTTPSWithHSTS", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(first)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := c.Get(tb.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Fatalf("status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
	})
	t.Run("NoOldTLS", func(t *testing.T) {
		c := insecureClient()
		c.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
		if _, err := c.Get(tb.url + "/healthz"); err == nil {
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
	t.Run("ReloadSwaps", func(t *testing.T) {
		writeSelfSigned(t, certFile, keyFile, 2)
		if err := cert.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := servedSerial(t, tb.url); got != 2 {
			t.Fatalf("served serial %d after reload, want 2", got)
		}
	})
	t.Run("BrokenPairKeepsOld", func(t *testing.T) {
		// A new certificate whose key has not been copied yet.
		writeSelfSigned(t, certFile, filepath.Join(dir, "other.key"), 3)
		if err := cert.Reload(); err == nil {
			t.Fatal("mismatched pair accepted")
		}
		if got := servedSerial(t, tb.url); got != 2 {
			t.Fatalf("served serial %d after a failed reload, want 2", got)
		}
	})
}

func TestPlainHTTPHasNoHSTS(t *testing.T) {
	tb := setup(t)
	resp, err := http.Get(tb.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
		t.Fatalf("HSTS %q over plain http", h)
	}
}
