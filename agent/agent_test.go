package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/internal/logtest"
	"gatehouse/protocol"
)

const (
	testSymKey  = "c2VjcmV0LXN5bW1ldHJpYy1rZXktZm9yLXRlc3RzISE="
	testPrivKey = "-----BEGIN PRIVATE KEY-----\nTUlJQ2VjcmV0S2V5TWF0ZXJpYWw=\n-----END PRIVATE KEY-----\n"
	testCert    = "-----BEGIN CERTIFICATE-----\nZGV2aWNl\n-----END CERTIFICATE-----\n"
	testCA      = "-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n"
)

func testBundle() (*protocol.Bundle, map[string][]byte) {
	b := &protocol.Bundle{
		Name: "gw-01", DPSIDScope: "0ne00ABCDEF", DPSRegistrationID: "gw-01",
		Certificate: testCert, CAChain: testCA,
	}
	secrets := map[string][]byte{
		protocol.FieldDPSPrimaryKey: []byte(testSymKey),
		protocol.FieldPrivateKey:    []byte(testPrivKey),
	}
	return b, secrets
}

// logBuffer collects the agent's log for assertions and shows it on failure.
type logBuffer = logtest.Buffer

func newLogs(t *testing.T) (*logBuffer, *slog.Logger) {
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs)
		}
	})
	return logs, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// writeKey writes a device key of the given kind, in the PEM form Mender uses.
func writeKey(t *testing.T, kind string) (string, crypto.Signer) {
	t.Helper()
	var (
		key   crypto.Signer
		block *pem.Block
		err   error
	)
	switch kind {
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
		block = pkcs8Block(t, key, err)
	case "ecdsa":
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err == nil {
			der, merr := x509.MarshalECPrivateKey(k)
			key, block, err = k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, merr
		}
	case "rsa":
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			key, block = k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case "p384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		block = pkcs8Block(t, key, err)
	default:
		t.Fatalf("unknown key kind %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mender-agent.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, key
}

func pkcs8Block(t *testing.T, key any, err error) *pem.Block {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

func testConfig(t *testing.T, f *fakeServer, keyPath string) (Config, *logBuffer) {
	logs, logger := newLogs(t)
	return Config{
		Server:          f.srv.URL,
		InsecureHTTP:    true, // the fake server is plain httptest
		KeyPath:         keyPath,
		OutDir:          filepath.Join(t.TempDir(), "gatehouse"),
		MAC:             "02:00:5E:10:00:01",
		RestartCommands: []string{},
		HTTPClient:      f.srv.Client(),
		Logger:          logger,
		BackoffMin:      time.Millisecond,
		BackoffMax:      5 * time.Millisecond,
	}, logs
}

type runResult struct {
	res *Result
	err error
}

func runAsync(ctx context.Context, cfg Config) <-chan runResult {
	ch := make(chan runResult, 1)
	go func() {
		res, err := Run(ctx, cfg)
		ch <- runResult{res, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return runResult{}
	}
}

func wantExit(t *testing.T, err error, code int, contains ...string) {
	t.Helper()
	if got := ExitCode(err); got != code {
		t.Fatalf("exit code %d (err %v), want %d", got, err, code)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestRunProvisions(t *testing.T) {
	for _, kind := range []string{"ed25519", "ecdsa", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			f := newFakeServer(t)
			keyPath, key := writeKey(t, kind)
			cfg, logs := testConfig(t, f, keyPath)
			ch := runAsync(t.Context(), cfg)

			// Walk the state machine one long poll at a time, like the real server.
			f.waitEnrolled(t)
			f.waitForCalls(t, protocol.PathWait, 1)
			f.setState("approved", "gw-01", "")
			f.waitForCalls(t, protocol.PathWait, 2)
			f.setState("failed", "gw-01", "dps: 503 from service")
			f.waitForCalls(t, protocol.PathWait, 3)
			f.setState("provisioning", "gw-01", "")
			f.waitForCalls(t, protocol.PathWait, 4)
			b, secrets := testBundle()
			f.provision(b, secrets)

			r := await(t, ch)
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			checkProvisioned(t, f, cfg, r.res)
			checkLogs(t, logs.String(), key)
		})
	}
}

func checkProvisioned(t *testing.T, f *fakeServer, cfg Config, res *Result) {
	t.Helper()
	f.mu.Lock()
	fingerprint, acked, bundle, mac := f.fingerprint, f.acked, f.bundle, f.mac
	f.mu.Unlock()
	if res.Name != "gw-01" || res.DeviceID != "dev-1" || res.Fingerprint != fingerprint {
		t.Errorf("result %+v", res)
	}
	if acked != "gw-01" || bundle != nil {
		t.Errorf("acked %q, bundle left %v", acked, bundle)
	}
	if mac != "02:00:5e:10:00:01" {
		t.Errorf("enrolled MAC %q, want normalised", mac)
	}
	wantFiles := map[string]struct {
		content string
		mode    os.FileMode
	}{
		FileDeviceName: {"gw-01\n", 0o644},
		FileIoTEdgeEnv: {"DEVICE_NAME=gw-01\nDPS_ID_SCOPE=0ne00ABCDEF\nDPS_REGISTRATION_ID=gw-01\nDPS_SYMMETRIC_KEY=" + testSymKey + "\n", 0o600},
		FileDeviceCert: {testCert, 0o644},
		FileDeviceKey:  {testPrivKey, 0o600},
		FileCACert:     {testCA, 0o644},
	}
	for name, want := range wantFiles {
		checkFile(t, filepath.Join(cfg.OutDir, name), want.content, want.mode)
	}
	checkConfigToml(t, filepath.Join(cfg.OutDir, FileConfigToml), "gw-01", "0ne00ABCDEF", testSymKey)
	want := len(wantFiles) + 1 // config.toml
	if n := len(res.Files); n != want || res.Files[n-1] != filepath.Join(cfg.OutDir, FileDeviceName) {
		t.Errorf("result files %v: want %d, device-name last", res.Files, want)
	}
	entries, _ := os.ReadDir(cfg.OutDir)
	if len(entries) != want {
		t.Errorf("out dir holds %d entries, want %d (temp files or marker left?)", len(entries), want)
	}
	if fi, err := os.Stat(cfg.OutDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("out dir: %v, mode %v, want 0700", err, fi.Mode().Perm())
	}
}

func checkFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	if string(data) != content {
		t.Errorf("%s = %q, want %q", filepath.Base(path), data, content)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
		t.Errorf("%s mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), mode)
	}
}

func checkLogs(t *testing.T, logs string, key crypto.Signer) {
	t.Helper()
	spki, err := protocol.MarshalPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	wantLines := []string{
		// The code the server sent, which only a holder of its secret computes.
		// Grouped as the page and the CLI show it: "557 546".
		fmt.Sprintf("verification code %s, key fingerprint sha256:%s",
			protocol.FormatCode(protocol.VerificationCode(fakeSecret, protocol.Fingerprint(spki))), protocol.Fingerprint(spki)),
		"pending: waiting for an operator to approve this gateway",
		"approved as gw-01",
		"provisioning gw-01 failed, the server is retrying",
		"provisioning gw-01 in the backends",
		"received credentials for gw-01",
	}
	for _, s := range wantLines {
		if !strings.Contains(logs, s) {
			t.Errorf("log lacks %q", s)
		}
	}
	for _, secret := range []string{testSymKey, "TUlJQ2VjcmV0S2V5TWF0ZXJpYWw", protocol.HeaderSignature} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains secret %q", secret)
		}
	}
}

func TestRunOncePending(t *testing.T) {
	f := newFakeServer(t)
	f.hold = 50 * time.Millisecond
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	cfg.Once = true
	_, err := Run(t.Context(), cfg)
	wantExit(t, err, ExitPending, "still pending")
	if n := f.callCount(protocol.PathWait); n != 1 {
		t.Errorf("%d wait rounds, want 1", n)
	}
	if _, err := os.Stat(cfg.OutDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("out dir exists after pending run: %v", err)
	}
}

// TestCodeWrittenGrouped: the console banner, the log and the "still
// pending" error write the verification code as the page and the CLI do,
// "557 546", so an operator compares like with like.
func TestCodeWrittenGrouped(t *testing.T) {
	f := newFakeServer(t)
	f.hold = 50 * time.Millisecond
	keyPath, key := writeKey(t, "ed25519")
	cfg, logs := testConfig(t, f, keyPath)
	cfg.Once = true
	var banner bytes.Buffer
	cfg.Banner = &banner
	_, err := Run(t.Context(), cfg)
	wantExit(t, err, ExitPending, "still pending")
	spki, err2 := protocol.MarshalPublicKey(key.Public())
	if err2 != nil {
		t.Fatal(err2)
	}
	raw := protocol.VerificationCode(fakeSecret, protocol.Fingerprint(spki))
	grouped := raw[:3] + " " + raw[3:]
	if want := "gatehouse-agent: verification code " + grouped + "\n"; !strings.Contains(banner.String(), want) {
		t.Errorf("banner %q lacks %q", banner.String(), want)
	}
	if !strings.Contains(err.Error(), "verification code "+grouped+")") {
		t.Errorf("error %q does not write the code grouped", err)
	}
	l := logs.String()
	if !strings.Contains(l, "verification code "+grouped+",") || !strings.Contains(l, `verification_code="`+grouped+`"`) {
		t.Errorf("log does not write the code grouped as %q:\n%s", grouped, l)
	}
}

func TestRunOnceProvisioned(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	cfg.Once = true
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	r := await(t, runAsync(t.Context(), cfg))
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	checkProvisioned(t, f, cfg, r.res)
}

func TestRunDismissed(t *testing.T) {
	for _, state := range []string{"dismissed", "decommissioned"} {
		t.Run(state, func(t *testing.T) {
			f := newFakeServer(t)
			keyPath, _ := writeKey(t, "ed25519")
			cfg, _ := testConfig(t, f, keyPath)
			ch := runAsync(t.Context(), cfg)
			f.waitForCalls(t, protocol.PathWait, 1)
			f.setState(state, "", "not ours")
			r := await(t, ch)
			wantExit(t, r.err, ExitDismissed, state, "not ours")
		})
	}
}

func TestRunRetriesTransientErrors(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ecdsa")
	cfg, logs := testConfig(t, f, keyPath)
	// Enroll meets 503, 429 (with Retry-After) and 502 before it gets through.
	f.fail("0", http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway)
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	r := await(t, runAsync(t.Context(), cfg))
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if n := f.callCount(protocol.PathEnroll); n != 4 {
		t.Errorf("%d enroll attempts, want 4", n)
	}
	if !strings.Contains(logs.String(), "enroll failed, retrying") {
		t.Error("retries not logged")
	}
	checkProvisioned(t, f, cfg, r.res)
}

// A server that does not hold a wait says when to ask again; the agent
// waits that long rather than asking at once (or after its short pace).
func TestRunHonoursPollAfter(t *testing.T) {
	f := newFakeServer(t)
	f.pollAfter = 1
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	ch := runAsync(t.Context(), cfg)
	f.waitForCalls(t, protocol.PathWait, 3)
	f.mu.Lock()
	waits := slices.Clone(f.waits)
	f.mu.Unlock()
	for i := 1; i < len(waits); i++ {
		if gap := waits[i].Sub(waits[i-1]); gap < time.Second {
			t.Errorf("wait %d came %v after the one before, though the server asked for 1 s", i+1, gap)
		}
	}
	b, secrets := testBundle()
	f.provision(b, secrets)
	if r := await(t, ch); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}

// Granted a session, the agent signs its waits with it, and only its
// waits; a refused session sends it back to its key at once.
func TestRunWaitsWithASession(t *testing.T) {
	f := newFakeServer(t)
	f.sessions = protocol.NewSessions(bytes.Repeat([]byte{9}, protocol.ServerSecretSize))
	f.verifier.Sessions = f.sessions
	f.hold = 10 * time.Millisecond
	keyPath, _ := writeKey(t, "ecdsa")
	cfg, _ := testConfig(t, f, keyPath)
	ch := runAsync(t.Context(), cfg)
	f.waitForCalls(t, protocol.PathWait, 4)
	f.mu.Lock()
	f.refuseNext = 1
	f.mu.Unlock()
	f.waitForCalls(t, protocol.PathWait, 10)
	b, secrets := testBundle()
	f.provision(b, secrets)
	r := await(t, ch)
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	checkProvisioned(t, f, cfg, r.res)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessionWait < 5 || f.errors > 1 {
		t.Errorf("%d waits signed with the session, %d refused requests; want most waits on the session and only the one refusal",
			f.sessionWait, f.errors)
	}
}

func TestRunRetriesNetworkErrors(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	cfg.HTTPClient = &http.Client{Transport: &flakyTransport{next: f.srv.Client().Transport, failures: 2}}
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	r := await(t, runAsync(t.Context(), cfg))
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	checkProvisioned(t, f, cfg, r.res)
}

// flakyTransport fails the first requests as a dropped network would.
type flakyTransport struct {
	next     http.RoundTripper
	mu       sync.Mutex
	failures int
}

func (ft *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ft.mu.Lock()
	fail := ft.failures > 0
	ft.failures--
	ft.mu.Unlock()
	if fail {
		return nil, errors.New("connect: network is unreachable")
	}
	return ft.next.RoundTrip(r)
}

func TestRunReenrollsWhenForgotten(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	f.mu.Lock()
	f.forgetOnce = true
	f.mu.Unlock()
	ch := runAsync(t.Context(), cfg)
	f.waitForCalls(t, protocol.PathEnroll, 2)
	b, secrets := testBundle()
	f.provision(b, secrets)
	if r := await(t, ch); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
}

func TestRunServerErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakeServer, *Config)
		code    int
		message string
	}{
		{"once and unreachable", func(f *fakeServer, c *Config) {
			c.Once = true
			f.fail("", 503, 503, 503)
		}, ExitServer, "unreachable"},
		{"permanent 403", func(f *fakeServer, c *Config) {
			f.fail("", http.StatusForbidden)
		}, ExitServer, "refused"},
		{"clock off", func(f *fakeServer, c *Config) {
			c.Now = func() time.Time { return time.Now().Add(-time.Hour) }
		}, ExitClock, "clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			keyPath, _ := writeKey(t, "ed25519")
			cfg, _ := testConfig(t, f, keyPath)
			tt.setup(f, &cfg)
			_, err := Run(t.Context(), cfg)
			wantExit(t, err, tt.code, tt.message, f.srv.URL)
		})
	}
}

func TestRunKeyErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	p384, _ := writeKey(t, "p384")
	for name, path := range map[string]string{
		"missing":     filepath.Join(dir, "nope", "mender-agent.pem"),
		"garbage":     garbage,
		"unsupported": p384,
		"directory":   dir,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeServer(t)
			cfg, _ := testConfig(t, f, path)
			_, err := Run(t.Context(), cfg)
			wantExit(t, err, ExitKey, path)
			if f.callCount(protocol.PathEnroll) != 0 {
				t.Error("agent talked to the server without a key")
			}
		})
	}
}

func TestRunConfigErrors(t *testing.T) {
	_, err := Run(t.Context(), Config{})
	wantExit(t, err, ExitConfig, "--server")
	_, err = Run(t.Context(), Config{Server: "ftp://x"})
	wantExit(t, err, ExitConfig, "ftp://x")
	_, err = Run(t.Context(), Config{Server: "https://x", MAC: "zz"})
	wantExit(t, err, ExitConfig, "--mac")
	_, err = Run(t.Context(), Config{Server: "https://x", MAC: "02:00:00:00:00:01", Interface: "eth0"})
	wantExit(t, err, ExitConfig, "--interface")
}

func TestRunRestartCommands(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	out := filepath.Join(t.TempDir(), "restarts.log")
	cfg.RestartCommands = []string{
		"echo mender >> " + out,
		`echo "iotedge $GATEHOUSE_DEVICE_NAME" >> ` + out,
	}
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	checkFile(t, out, "mender\niotedge gw-01\n", 0o644)
}

func TestRunRestartFailure(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	out := filepath.Join(t.TempDir(), "restarts.log")
	cfg.RestartCommands = []string{"echo broken >&2; exit 3", "echo still-ran >> " + out}
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	r := await(t, runAsync(t.Context(), cfg))
	wantExit(t, r.err, ExitRestart, "exit status 3", "credentials written")
	if r.res == nil || r.res.Name != "gw-01" {
		t.Errorf("result %+v, want the provisioned gateway", r.res)
	}
	checkFile(t, out, "still-ran\n", 0o644)
	checkFile(t, filepath.Join(cfg.OutDir, FileDeviceName), "gw-01\n", 0o644)
}

func TestRunNoRestart(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	marker := filepath.Join(t.TempDir(), "ran")
	cfg.RestartCommands = []string{"touch " + marker}
	cfg.NoRestart = true
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Error("restart command ran despite NoRestart")
	}
}

func TestRunCancelled(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	ctx, cancel := context.WithCancel(t.Context())
	ch := runAsync(ctx, cfg)
	f.waitForCalls(t, protocol.PathWait, 1)
	cancel()
	r := await(t, ch)
	if !errors.Is(r.err, context.Canceled) || ExitCode(r.err) != ExitFailure {
		t.Fatalf("err %v (exit %d), want context.Canceled and exit 1", r.err, ExitCode(r.err))
	}
}

func TestBundleWithoutOptionalBackends(t *testing.T) {
	id := testIdentity(t, "ed25519")
	files, err := bundleFiles(t, &protocol.Bundle{Name: "gw-02"}, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].name != FileDeviceName {
		t.Fatalf("files %v, want only device-name", files)
	}
	for _, b := range []*protocol.Bundle{
		{Name: "Bad Name"},
		{Name: "gw-03", DPSIDScope: "0ne00"}, // DPS without its key
		{Name: "gw-04", Sealed: map[string][]byte{protocol.FieldPrivateKey: []byte("not sealed")}},
		{Name: "gw-05", Certificate: "not a certificate"}, // sign mode, nothing to check the key against
	} {
		if _, err := bundleFiles(t, b, id); err == nil {
			t.Errorf("bundle %+v accepted", b)
		}
	}
}

func TestEnvRejectsUnsafeValues(t *testing.T) {
	id := testIdentity(t, "ed25519")
	ct, err := protocol.Seal(id.sealKey.PublicKey().Bytes(), protocol.FieldDPSPrimaryKey, []byte("abc\nEVIL=1"))
	if err != nil {
		t.Fatal(err)
	}
	b := &protocol.Bundle{Name: "gw-05", DPSIDScope: "0ne00", Sealed: map[string][]byte{protocol.FieldDPSPrimaryKey: ct}}
	_, err = bundleFiles(t, b, id)
	if err == nil || strings.Contains(err.Error(), "EVIL") {
		t.Fatalf("err %v: want a refusal that does not echo the value", err)
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.key")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "new", 0o600)
}

func TestExitCode(t *testing.T) {
	wrapped := fmt.Errorf("outer: %w", &ExitError{Code: ExitDismissed, Err: errors.New("x")})
	for err, want := range map[error]int{
		nil:                 ExitOK,
		errors.New("plain"): ExitFailure,
		wrapped:             ExitDismissed,
		gatehouse.Errorf(gatehouse.EINVALID, "x"): ExitFailure,
	} {
		if got := ExitCode(err); got != want {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, want)
		}
	}
}
