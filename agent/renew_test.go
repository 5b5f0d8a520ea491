package agent

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/simulate"
	"gatehouse/store"
	"gatehouse/vault"
)

// realServer is a gatehouse server whose only backend is the simulated PKI.
type realServer struct {
	url string
	svc *provision.Service
	db  *store.DB
	pki *simulate.PKI
}

// dueRole issues certificates already past two thirds of their lifetime:
// OpenBao's not_before_duration backdates NotBefore (path_roles.go), so
// with 3 h of backdating and a 1 h max_ttl a fresh certificate is 3 h into
// its 4 h life. Renewal is due at once without moving any clock.
func dueRole() simulate.VaultRole {
	r := simulate.RecommendedVaultRole()
	r.NotBeforeDuration, r.MaxTTL = 3*time.Hour, time.Hour
	return r
}

func startRealServer(t *testing.T, role simulate.VaultRole, sign bool) *realServer {
	t.Helper()
	ctx := context.Background()
	pki, err := simulate.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.SetRole(role); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := provision.New(db, provision.Config{Backends: []gatehouse.Backend{vault.NewBackend(pki, sign, "gatehouse")},
		Logger: quiet, RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(svc)
	srv.Addr, srv.Logger, srv.DeviceRate = "127.0.0.1:0", quiet, rate.Inf
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
		svc.Stop(ctx)
		db.Close()
	})
	return &realServer{url: srv.URL(), svc: svc, db: db, pki: pki}
}

// provisionGateway enrolls the agent, approves it and runs it until it
// has written its bundle; it returns the device id.
func (rs *realServer) provisionGateway(t *testing.T, cfg Config, name string) string {
	t.Helper()
	ctx := context.Background()
	done := runAsync(ctx, cfg)
	id := rs.awaitPending(t)
	if _, err := rs.svc.Approve(ctx, "token:test", id, provision.Approval{Name: name}); err != nil {
		t.Fatal(err)
	}
	if r := await(t, done); r.err != nil {
		t.Fatalf("provisioning run: %v", r.err)
	}
	return id
}

// awaitPending returns the one pending gateway once it has enrolled.
func (rs *realServer) awaitPending(t *testing.T) string {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		l, err := rs.svc.ListDevices(context.Background(), provision.ListFilter{State: gatehouse.StatePending})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Devices) == 1 {
			return l.Devices[0].ID
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatal("the agent never enrolled")
		}
	}
}

func realConfig(t *testing.T, rs *realServer) (Config, *logBuffer) {
	keyPath, _ := writeKey(t, "ecdsa")
	logs, logger := newLogs(t)
	return Config{
		Server: rs.url, InsecureHTTP: true, KeyPath: keyPath,
		OutDir: filepath.Join(t.TempDir(), "gatehouse"), MAC: "02:00:5E:10:00:01",
		RestartCommands: []string{}, Logger: logger,
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond,
	}, logs
}

// waitPKIRevoked waits until the PKI lists serial as revoked, looking again
// at every change of the device and at least every 50 ms.
func (rs *realServer) waitPKIRevoked(t *testing.T, id, serial string) {
	t.Helper()
	wake, cancel := rs.svc.Notifier().Subscribe(id)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for !slices.Contains(rs.pki.Revoked(), serial) {
		select {
		case <-wake:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("serial %s never revoked; revoked: %v", serial, rs.pki.Revoked())
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRenewModeRenewsAndTheOldSerialIsRevoked(t *testing.T) {
	t.Parallel()
	for _, sign := range []bool{false, true} {
		t.Run(map[bool]string{false: "issue", true: "sign"}[sign], func(t *testing.T) {
			t.Parallel()
			rs := startRealServer(t, dueRole(), sign)
			cfg, logs := realConfig(t, rs)
			id := rs.provisionGateway(t, cfg, "gw-renew")
			certPath, keyPath := filepath.Join(cfg.OutDir, FileDeviceCert), filepath.Join(cfg.OutDir, FileDeviceKey)
			oldCert, oldKey := readFile(t, certPath), readFile(t, keyPath)
			old, err := readCertFile(certPath)
			if err != nil {
				t.Fatal(err)
			}

			res, err := Renew(context.Background(), cfg, RenewOptions{})
			if err != nil {
				t.Fatal(err)
			}
			newCert, newKey := readFile(t, certPath), readFile(t, keyPath)
			if !res.Renewed || res.Name != "gw-renew" || newCert == oldCert || res.Serial == formatSerial(old) {
				t.Fatalf("result %+v: want a renewed certificate with a new serial", res)
			}
			if _, err := tls.X509KeyPair([]byte(newCert), []byte(newKey)); err != nil {
				t.Fatalf("renewed certificate and device.key do not match: %v", err)
			}
			if sign != (newKey == oldKey) {
				t.Errorf("sign mode %v: key changed = %v; the key stays on the gateway only when the PKI signs", sign, newKey != oldKey)
			}
			if _, err := os.Stat(certPath + RenewSuffix); !os.IsNotExist(err) {
				t.Errorf("renewal marker left behind: %v", err)
			}
			rs.waitPKIRevoked(t, id, formatSerial(old))
			certs, err := rs.svc.Certificates(context.Background(), id)
			if err != nil || len(certs) != 2 || certs[0].Serial != res.Serial || certs[0].RevokedAt != nil || certs[1].Origin != gatehouse.CertFromProvision {
				t.Fatalf("kept certificates = %+v, %v; want the renewal live and the provisioning one", certs, err)
			}
			if !strings.Contains(logs.String(), "renewal confirmed") {
				t.Errorf("log does not say the renewal was confirmed")
			}
		})
	}
}

func TestRenewModeTooEarlyDoesNothing(t *testing.T) {
	t.Parallel()
	rs := startRealServer(t, simulate.RecommendedVaultRole(), false) // the mount's 32 days
	cfg, logs := realConfig(t, rs)
	rs.provisionGateway(t, cfg, "gw-early")
	certPath := filepath.Join(cfg.OutDir, FileDeviceCert)
	before, n := readFile(t, certPath), rs.pki.Len()
	// The key is gone: a run that so much as connected would fail.
	if err := os.Remove(cfg.KeyPath); err != nil {
		t.Fatal(err)
	}
	res, err := Renew(context.Background(), cfg, RenewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Renewed || !res.DueAt.After(time.Now().Add(14*24*time.Hour)) || readFile(t, certPath) != before || rs.pki.Len() != n {
		t.Fatalf("result %+v, PKI holds %d (had %d): want nothing done, due in about three weeks (the mount caps the lifetime at 32 days)", res, rs.pki.Len(), n)
	}
	if !strings.Contains(logs.String(), "nothing to do") {
		t.Errorf("log does not say there was nothing to do")
	}
}

func TestRenewModeServerRefusesBeforeHalfLife(t *testing.T) {
	t.Parallel()
	rs := startRealServer(t, simulate.RecommendedVaultRole(), false)
	cfg, _ := realConfig(t, rs)
	rs.provisionGateway(t, cfg, "gw-forced")
	n := rs.pki.Len()
	_, err := Renew(context.Background(), cfg, RenewOptions{Force: true})
	wantExit(t, err, ExitServer, "too early")
	if rs.pki.Len() != n {
		t.Fatalf("PKI issued although the server refused")
	}
}

func TestRenewModeRefusedAfterDecommission(t *testing.T) {
	t.Parallel()
	rs := startRealServer(t, dueRole(), false)
	cfg, _ := realConfig(t, rs)
	id := rs.provisionGateway(t, cfg, "gw-gone")
	// The decommission flow lands elsewhere; its end state is this.
	s := gatehouse.StateDecommissioned
	err := rs.db.InTx(context.Background(), func(tx *store.Tx) error {
		return tx.UpdateDevice(context.Background(), id, store.DeviceUpdate{State: &s})
	})
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(cfg.OutDir, FileDeviceCert)
	before, n := readFile(t, certPath), rs.pki.Len()
	_, err = Renew(context.Background(), cfg, RenewOptions{})
	wantExit(t, err, ExitDismissed, "decommissioned")
	if readFile(t, certPath) != before || rs.pki.Len() != n {
		t.Fatalf("a decommissioned gateway's renewal changed something")
	}
}

func TestRenewModeConfirmsAfterAnInterruptedRun(t *testing.T) {
	t.Parallel()
	rs := startRealServer(t, dueRole(), false)
	cfg, _ := realConfig(t, rs)
	id := rs.provisionGateway(t, cfg, "gw-cut")
	certPath := filepath.Join(cfg.OutDir, FileDeviceCert)
	old, err := readCertFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	// The run dies right after writing device.crt: the confirmation never
	// goes out.
	ctx, cancel := context.WithCancel(context.Background())
	cut := cfg
	cut.Checkpoint = func(point string) {
		if point == "mid-write:"+FileDeviceCert {
			cancel()
		}
	}
	res, err := Renew(ctx, cut, RenewOptions{})
	if err != nil || !res.Renewed {
		t.Fatalf("interrupted run: %+v, %v", res, err)
	}
	if _, err := os.Stat(certPath + RenewSuffix); err != nil {
		t.Fatalf("marker missing after an unconfirmed renewal: %v", err)
	}
	if slices.Contains(rs.pki.Revoked(), formatSerial(old)) {
		t.Fatal("old certificate revoked before the gateway confirmed the new one")
	}
	n := rs.pki.Len()
	// The next run confirms what is on disk instead of renewing again.
	again, err := Renew(context.Background(), cfg, RenewOptions{})
	if err != nil || !again.Renewed || again.Serial != res.Serial || rs.pki.Len() != n {
		t.Fatalf("next run = %+v, %v (PKI %d, had %d); want the same serial confirmed, nothing issued", again, err, rs.pki.Len(), n)
	}
	rs.waitPKIRevoked(t, id, formatSerial(old))
}

func TestRenewModeConfigErrors(t *testing.T) {
	t.Parallel()
	rs := startRealServer(t, dueRole(), false)
	cfg, _ := realConfig(t, rs)
	_, err := Renew(context.Background(), cfg, RenewOptions{At: 1.5})
	wantExit(t, err, ExitConfig, "--renew-at")
	_, err = Renew(context.Background(), cfg, RenewOptions{})
	wantExit(t, err, ExitPending, "not provisioned")
}
