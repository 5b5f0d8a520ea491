package agent

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"gatehouse/protocol"
)

func TestPlainHTTPRefused(t *testing.T) {
	for _, server := range []string{"http://gatehouse.example.com", "http://127.0.0.1:8080"} {
		_, err := Run(t.Context(), Config{Server: server})
		wantExit(t, err, ExitConfig, "refusing plain http", "--insecure-http")
	}
	_, err := Run(t.Context(), Config{Server: "http://127.0.0.1:1", InsecureHTTP: true, ServerPin: "sha256/x"})
	wantExit(t, err, ExitConfig, "need an https")
	_, err = Run(t.Context(), Config{Server: "https://x", ServerPin: "md5/abc"})
	wantExit(t, err, ExitConfig, "invalid --pin")
}

// tlsConfigFor points cfg at f's HTTPS endpoint through the default client,
// trusting only f's CA from a file, as --ca does.
func tlsConfigFor(t *testing.T, f *fakeServer, keyPath string) (Config, *logBuffer) {
	cfg, logs := testConfig(t, f, keyPath)
	cfg.InsecureHTTP, cfg.HTTPClient = false, nil
	cfg.ServerCA = filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(cfg.ServerCA, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, logs
}

func TestRunOverTLSWithCA(t *testing.T) {
	for _, pin := range []string{"", "match"} {
		t.Run("pin="+pin, func(t *testing.T) {
			f := newFakeTLSServer(t)
			keyPath, _ := writeKey(t, "ed25519")
			cfg, _ := tlsConfigFor(t, f, keyPath)
			if pin == "match" {
				// A spare pin first: rollover lists may hold several.
				cfg.ServerPin = "sha256/" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "," + PinOf(f.srv.Certificate())
			}
			ch := runAsync(t.Context(), cfg)
			f.waitEnrolled(t)
			b, secrets := testBundle()
			f.provision(b, secrets)
			if r := await(t, ch); r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
		})
	}
}

func TestTLSRefusals(t *testing.T) {
	f := newFakeTLSServer(t)
	keyPath, _ := writeKey(t, "ed25519")

	t.Run("PinMismatch", func(t *testing.T) {
		cfg, _ := tlsConfigFor(t, f, keyPath)
		other := sha256.Sum256([]byte("another key"))
		cfg.ServerPin, cfg.Once = "sha256/"+base64.StdEncoding.EncodeToString(other[:]), true
		_, err := Run(t.Context(), cfg)
		wantExit(t, err, ExitServer, "does not match --pin", PinOf(f.srv.Certificate()))
	})
	t.Run("SystemRootsOnly", func(t *testing.T) {
		// Without --ca the test CA is unknown: the handshake must fail.
		cfg, _ := tlsConfigFor(t, f, keyPath)
		cfg.ServerCA, cfg.Once = "", true
		_, err := Run(t.Context(), cfg)
		wantExit(t, err, ExitServer, "certificate")
	})
	t.Run("BadCAFile", func(t *testing.T) {
		cfg, _ := tlsConfigFor(t, f, keyPath)
		os.WriteFile(cfg.ServerCA, []byte("not pem"), 0o644)
		_, err := Run(t.Context(), cfg)
		wantExit(t, err, ExitConfig, "no PEM certificates")
	})
	if n := f.callCount(protocol.PathEnroll); n != 0 {
		t.Errorf("%d enroll requests reached the server through refused connections", n)
	}
}
