package agent

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"gatehouse/protocol"
)

// crashPoints are where a power cut leaves a distinct state on disk.
var crashPoints = []string{
	"after-bundle",
	"mid-write:" + FileIoTEdgeEnv,
	"mid-write:" + FileDeviceKey,
	"mid-write:" + FileConfigToml,
	"mid-write:" + FileDeviceName,
	"before-ack",
	"after-ack",
	"before-restart",
	"after-restart",
}

// runUntilCrash runs the agent and stops its goroutine dead at point, as a
// power cut would: no deferred cleanup that checks for errors gets to run.
func runUntilCrash(t *testing.T, cfg Config, point string) {
	t.Helper()
	crashed := make(chan bool, 1)
	cfg.Checkpoint = func(p string) {
		if p == point {
			crashed <- true
			runtime.Goexit()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := Run(t.Context(), cfg); err != nil {
			t.Errorf("run before the crash: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not stop")
	}
	select {
	case <-crashed:
	default:
		t.Fatalf("agent never reached %s", point)
	}
}

func TestResumesAfterPowerCut(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			f := newFakeServer(t)
			keyPath, _ := writeKey(t, "ed25519")
			cfg, _ := testConfig(t, f, keyPath)
			restarts := filepath.Join(t.TempDir(), "restarts.log")
			cfg.RestartCommands = []string{"echo restarted >> " + restarts}
			b, secrets := testBundle()
			f.approveWhenEnrolled(t, t.Context(), b, secrets)
			runUntilCrash(t, cfg, point)
			if file, ok := strings.CutPrefix(point, "mid-write:"); ok {
				if torn, _ := filepath.Glob(filepath.Join(cfg.OutDir, "."+file+".tmp-*")); len(torn) != 1 {
					t.Fatalf("crash mid-write left %v, want one torn temp file", torn)
				}
			}

			r := await(t, runAsync(t.Context(), cfg))
			if r.err != nil {
				t.Fatalf("run after the crash: %v", r.err)
			}
			checkInstalled(t, f, cfg)
			if data, _ := os.ReadFile(restarts); !strings.HasPrefix(string(data), "restarted\n") {
				t.Errorf("restart commands never ran to the end (log %q)", data)
			}
			// A third run finds a finished gateway and leaves the server alone.
			calls := f.callCount(protocol.PathEnroll) + f.callCount(protocol.PathAck)
			if r := await(t, runAsync(t.Context(), cfg)); r.err != nil || r.res.Name != "gw-01" {
				t.Fatalf("third run: %+v %v", r.res, r.err)
			}
			if f.callCount(protocol.PathEnroll)+f.callCount(protocol.PathAck) != calls {
				t.Error("a provisioned gateway talked to the server")
			}
		})
	}
}

// checkInstalled checks the outputs are complete and nothing is left over.
func checkInstalled(t *testing.T, f *fakeServer, cfg Config) {
	t.Helper()
	f.mu.Lock()
	acked, bundle := f.acked, f.bundle
	f.mu.Unlock()
	if acked != "gw-01" || bundle != nil {
		t.Errorf("acked %q, bundle left on the server: %v", acked, bundle != nil)
	}
	checkFile(t, filepath.Join(cfg.OutDir, FileDeviceName), "gw-01\n", 0o644)
	checkFile(t, filepath.Join(cfg.OutDir, FileDeviceKey), testPrivKey, 0o600)
	checkFile(t, filepath.Join(cfg.OutDir, FileIoTEdgeEnv),
		"DEVICE_NAME=gw-01\nDPS_ID_SCOPE=0ne00ABCDEF\nDPS_REGISTRATION_ID=gw-01\nDPS_SYMMETRIC_KEY="+testSymKey+"\n", 0o600)
	checkConfigToml(t, filepath.Join(cfg.OutDir, FileConfigToml), "gw-01", "0ne00ABCDEF", testSymKey)
	entries, _ := os.ReadDir(cfg.OutDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 6 {
		t.Errorf("out dir holds %v, want the 6 outputs only", names)
	}
}

func TestAlreadyProvisioned(t *testing.T) {
	f := newFakeServer(t)
	cfg, logs := testConfig(t, f, filepath.Join(t.TempDir(), "no-key-needed.pem"))
	writeRootFile(t, cfg.OutDir, FileDeviceName, []byte("gw-09\n"), 0o644)
	res, err := Run(t.Context(), cfg)
	if err != nil || res.Name != "gw-09" {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if !strings.Contains(logs.String(), "already provisioned as gw-09") {
		t.Error("no 'already provisioned' line")
	}
	if f.callCount(protocol.PathEnroll) != 0 {
		t.Error("contacted the server")
	}
}

func TestForceProvisionsAgain(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ecdsa")
	cfg, _ := testConfig(t, f, keyPath)
	cfg.Force = true
	writeRootFile(t, cfg.OutDir, FileDeviceName, []byte("gw-09\n"), 0o644)
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil || r.res.Name != "gw-01" {
		t.Fatalf("Run = %+v, %v", r.res, r.err)
	}
	checkInstalled(t, f, cfg)
}

// A restart that failed is tried again by the next run (systemd restarts
// the unit on failure); the ack is not repeated.
func TestRestartFailureRetriedNextRun(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	flag := filepath.Join(t.TempDir(), "fixed")
	cfg.RestartCommands = []string{"test -e " + flag}
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	r := await(t, runAsync(t.Context(), cfg))
	wantExit(t, r.err, ExitRestart, "test -e")
	marker := filepath.Join(cfg.OutDir, FileDeviceName+PendingSuffix)
	checkFile(t, marker, "restart\nconfig-toml\n", 0o644)

	os.WriteFile(flag, nil, 0o644)
	acks := f.callCount(protocol.PathAck)
	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil {
		t.Fatalf("second run: %v", r.err)
	}
	if f.callCount(protocol.PathAck) != acks {
		t.Error("acked again")
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("marker left: %v", err)
	}
}

// An ack the server could not take stays pending, but does not hold up the
// restarts or fail the run.
func TestAckFailureStaysPending(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, logs := testConfig(t, f, keyPath)
	cfg.Checkpoint = func(p string) {
		if p == "before-ack" {
			f.fail("", 503, 503, 503, 503, 503)
		}
	}
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	waitForLog(t, logs, "will try again on the next run")
	checkFile(t, filepath.Join(cfg.OutDir, FileDeviceName+PendingSuffix), "ack\nconfig-toml\n", 0o644)

	cfg.Checkpoint = nil
	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil {
		t.Fatalf("second run: %v", r.err)
	}
	checkInstalled(t, f, cfg)
}
