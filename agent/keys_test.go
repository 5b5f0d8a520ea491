package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rsa3072 is generated once: RSA 3072 under -race takes seconds.
var rsa3072 = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 3072) })

// keyFormat writes a device key the way one Mender version (or tool) does
// and returns the PEM.
type keyFormat struct {
	name, pemType string
	make          func(t *testing.T, dir string) []byte
}

func goKey(pemType string, gen func() (crypto.Signer, error), encode func(crypto.Signer) ([]byte, error)) func(*testing.T, string) []byte {
	return func(t *testing.T, _ string) []byte {
		k, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		der, err := encode(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
	}
}

func opensslKey(cmds ...string) func(*testing.T, string) []byte {
	return func(t *testing.T, dir string) []byte {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("openssl not on PATH; skipping keys made by the openssl command line")
		}
		for _, c := range cmds {
			cmd := exec.Command("openssl", strings.Fields(c)...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("openssl %s: %v\n%s", c, err, out)
			}
		}
		data, err := os.ReadFile(filepath.Join(dir, "private.key"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
}

var (
	pkcs8   = func(k crypto.Signer) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }
	genRSA  = func() (crypto.Signer, error) { return rsa3072() }
	genEd   = func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }
	genP256 = func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
)

// keyFormats are the keys real Mender installs hold, made by Go and by
// openssl exactly as Mender's support/keygen-client does.
var keyFormats = []keyFormat{
	{"go/rsa3072-pkcs1 (mender 3.x)", "RSA PRIVATE KEY", goKey("RSA PRIVATE KEY", genRSA,
		func(k crypto.Signer) ([]byte, error) { return x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey)), nil })},
	{"go/rsa3072-pkcs8 (mender 4.x)", "PRIVATE KEY", goKey("PRIVATE KEY", genRSA, pkcs8)},
	{"go/ed25519-pkcs8 (mender 5.x)", "PRIVATE KEY", goKey("PRIVATE KEY", genEd, pkcs8)},
	{"go/p256-sec1", "EC PRIVATE KEY", goKey("EC PRIVATE KEY", genP256,
		func(k crypto.Signer) ([]byte, error) { return x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey)) })},
	{"go/p256-pkcs8", "PRIVATE KEY", goKey("PRIVATE KEY", genP256, pkcs8)},
	// keygen-client verbatim: with OpenSSL 3 `openssl rsa` writes PKCS#8.
	{"openssl/keygen-client", "", opensslKey(
		"genpkey -algorithm RSA -out private.key -pkeyopt rsa_keygen_bits:3072",
		"rsa -in private.key -out private.key")},
	// ... and with OpenSSL 1.1 it wrote PKCS#1, which -traditional reproduces.
	{"openssl/keygen-client-openssl1", "RSA PRIVATE KEY", opensslKey(
		"genpkey -algorithm RSA -out private.key -pkeyopt rsa_keygen_bits:3072",
		"rsa -in private.key -out private.key -traditional")},
	{"openssl/ed25519", "PRIVATE KEY", opensslKey("genpkey -algorithm ed25519 -out private.key")},
	{"openssl/p256-ecparam", "EC PRIVATE KEY", opensslKey("ecparam -name prime256v1 -genkey -out private.key")},
	{"openssl/p256-genpkey", "PRIVATE KEY", opensslKey("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out private.key")},
}

// spkiFingerprint is the fingerprint computed independently of the agent.
func spkiFingerprint(t *testing.T, keyPEM []byte) string {
	t.Helper()
	rest := keyPEM
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			t.Fatal("no key block")
		}
		var k any
		var err error
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(k.(crypto.Signer).Public())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		return hex.EncodeToString(sum[:])
	}
}

// TestEveryKeyFormat provisions with each format from Mender's default key
// location below a root, as on a gateway.
func TestEveryKeyFormat(t *testing.T) {
	for _, kf := range keyFormats {
		t.Run(kf.name, func(t *testing.T) {
			keyPEM := kf.make(t, t.TempDir())
			if kf.pemType != "" && !strings.Contains(string(keyPEM), "-----BEGIN "+kf.pemType+"-----") {
				t.Fatalf("made a key of another form than %s:\n%.40s", kf.pemType, keyPEM)
			}
			f := newFakeServer(t)
			cfg, _ := testConfig(t, f, "")
			cfg.Root, cfg.OutDir = t.TempDir(), "/var/lib/gatehouse"
			writeRootFile(t, cfg.Root, DefaultKeyPath, keyPEM, 0o600)
			b, secrets := testBundle()
			f.approveWhenEnrolled(t, t.Context(), b, secrets)
			r := await(t, runAsync(t.Context(), cfg))
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			if want := spkiFingerprint(t, keyPEM); r.res.Fingerprint != want {
				t.Errorf("fingerprint %s, want %s", r.res.Fingerprint, want)
			}
			checkFile(t, filepath.Join(cfg.Root, "var/lib/gatehouse", FileDeviceName), "gw-01\n", 0o644)
		})
	}
}

func writeRootFile(t *testing.T, root, path string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindKey(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		conf     string // /etc/mender/mender.conf
		fallback string // /var/lib/mender/mender.conf
		datadir  string
		want     string
		code     int
		errText  string
	}{
		{"default", Config{}, "", "", "", DefaultKeyPath, 0, ""},
		{"mender.conf without setting", Config{}, `{"ServerURL": "https://hosted.mender.io"}`, "", "", DefaultKeyPath, 0, ""},
		{"AuthPrivateKey", Config{}, `{"Security": {"AuthPrivateKey": "/data/keys/device.pem"}}`, "", "", "/data/keys/device.pem", 0, ""},
		{"fallback conf", Config{}, `{}`, `{"Security": {"AuthPrivateKey": "/data/fallback.pem"}}`, "", "/data/fallback.pem", 0, ""},
		{"main conf wins", Config{}, `{"Security":{"AuthPrivateKey":"/a.pem"}}`, `{"Security":{"AuthPrivateKey":"/b.pem"}}`, "", "/a.pem", 0, ""},
		{"--key wins", Config{KeyPath: "/k.pem"}, `{"Security":{"AuthPrivateKey":"/a.pem"}}`, "", "", "/k.pem", 0, ""},
		{"custom mender.conf", Config{MenderConf: "/opt/mender.conf"}, "", "", "", DefaultKeyPath, 0, ""},
		{"data store env", Config{}, "", "", "/data/mender", "/data/mender/mender-agent.pem", 0, ""},
		{"pkcs11", Config{}, `{"Security": {"AuthPrivateKey": "pkcs11:token=mender;object=key?pin-value=1234"}}`, "", "", "", ExitKey, "PKCS#11"},
		{"broken json", Config{}, `{"Security": `, "", "", "", ExitConfig, "/etc/mender/mender.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			t.Setenv("MENDER_DATASTORE_DIR", tt.datadir)
			if tt.conf != "" {
				writeRootFile(t, root, DefaultMenderConf, []byte(tt.conf), 0o600)
			}
			if tt.fallback != "" {
				writeRootFile(t, root, menderFallbackConf, []byte(tt.fallback), 0o600)
			}
			cfg := tt.cfg
			cfg.Root = root
			cfg = cfg.withDefaults()
			loc, err := findKey(&cfg)
			if tt.code != 0 {
				wantExit(t, err, tt.code, tt.errText)
				if strings.Contains(err.Error(), "1234") {
					t.Error("error shows the PKCS#11 PIN")
				}
				return
			}
			if err != nil || loc.device != tt.want || loc.host != filepath.Join(root, tt.want) {
				t.Errorf("findKey = %+v, %v; want %s", loc, err, tt.want)
			}
		})
	}
}

// TestWaitForKey starts before Mender made its key, as on first boot.
func TestWaitForKey(t *testing.T) {
	f := newFakeServer(t)
	keyPath := filepath.Join(t.TempDir(), "mender", "mender-agent.pem")
	cfg, logs := testConfig(t, f, keyPath)
	cfg.WaitForKey = true
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	ch := runAsync(t.Context(), cfg)
	waitForLog(t, logs, "waiting for the Mender device key")
	// Mender creates the file before it writes the key into it.
	writeRootFile(t, "/", keyPath, nil, 0o600)
	time.Sleep(2 * keyPollInterval)
	if f.callCount("/device/v1/enroll") != 0 {
		t.Fatal("enrolled with an empty key file")
	}
	src, _ := writeKey(t, "ed25519")
	data, _ := os.ReadFile(src)
	os.WriteFile(keyPath, data, 0o600)
	if r := await(t, ch); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}

func TestKeyErrorsDoNotWait(t *testing.T) {
	f := newFakeServer(t)
	garbage := writeRootFile(t, t.TempDir(), "k.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	cfg, _ := testConfig(t, f, garbage)
	cfg.WaitForKey = true
	_, err := Run(t.Context(), cfg)
	wantExit(t, err, ExitKey, garbage)
}

func waitForLog(t *testing.T, logs *logBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q", text)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
