package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeTestPair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func TestServeTLSFlagsGoTogether(t *testing.T) {
	env := map[string]string{"GATEHOUSE_TLS_CERT": "/some/cert.pem"}
	var stderr bytes.Buffer
	code := run(t.Context(), []string{"serve", "--db", filepath.Join(t.TempDir(), "db")}, &bytes.Buffer{}, &stderr,
		func(k string) string { return env[k] })
	if code != 2 || !strings.Contains(stderr.String(), "--tls-cert and --tls-key") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestSIGHUPReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeTestPair(t, certFile, keyFile, 1)
	cert, err := loadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logged := make(chan string, 4)
	reloadOnHangup(ctx, cert, slog.New(messages{logged}))
	writeTestPair(t, certFile, keyFile, 2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-logged:
		if serial := cert.Leaf().Leaf.SerialNumber.Int64(); msg != "TLS certificate reloaded" || serial != 2 {
			t.Fatalf("after SIGHUP: %q, serving serial %d; want the reload of serial 2", msg, serial)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP did not reload the certificate")
	}
}

// messages is a slog handler that hands each record's message to a
// channel, so a test can wait for what the code logs it did.
type messages struct{ ch chan<- string }

func (m messages) Enabled(context.Context, slog.Level) bool      { return true }
func (m messages) Handle(_ context.Context, r slog.Record) error { m.ch <- r.Message; return nil }
func (m messages) WithAttrs([]slog.Attr) slog.Handler            { return m }
func (m messages) WithGroup(string) slog.Handler                 { return m }
