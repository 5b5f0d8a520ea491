package provision_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/mender"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/simulate"
	"gatehouse/store"
	"gatehouse/vault"
)

// testBundle is one service over a fresh SQLite file with simulated backends.
type testBundle struct {
	db     *store.DB
	svc    *provision.Service
	mender *simulate.Mender
	dps    *simulate.DPS
	pki    *simulate.PKI
	hub    *simulate.Hub
}

// apis are the backends' APIs a test provisions into; nil ones are off.
type apis struct {
	Mender  gatehouse.Mender
	DPS     gatehouse.DPS
	IoTHub  gatehouse.IoTHub
	PKI     gatehouse.PKI
	PKISign bool
}

// testConfig is a provision.Config whose backends are still open to change.
type testConfig struct {
	provision.Config
	Backends  apis
	Manifests azure.Manifests
}

// build registers the backends as package config does.
func (c testConfig) build() provision.Config {
	cfg, b := c.Config, c.Backends
	if b.Mender != nil {
		mb := mender.NewBackend(b.Mender)
		mb.TagWait = 20 * time.Millisecond // inventory lags 100 ms, as the simulator models
		cfg.Backends = append(cfg.Backends, mb)
	}
	if b.DPS != nil {
		cfg.Backends = append(cfg.Backends, azure.NewDPSBackend(b.DPS))
	}
	if b.IoTHub != nil {
		cfg.Backends = append(cfg.Backends, azure.NewHubBackend(b.IoTHub, b.DPS, c.Manifests))
	}
	if b.PKI != nil {
		cfg.Backends = append(cfg.Backends, vault.NewBackend(b.PKI, b.PKISign, "gateway"))
	}
	return cfg
}

func fastConfig(b apis) testConfig {
	return testConfig{Backends: b, Config: provision.Config{
		RetryBase: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		PollInterval: 10 * time.Millisecond, JobTimeout: 5 * time.Second, RescueAfter: 6 * time.Second,
	}}
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pki, err := simulate.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.SetRole(simulate.RecommendedVaultRole()); err != nil {
		t.Fatal(err)
	}
	tb := &testBundle{mender: simulate.NewMender(), dps: simulate.NewDPS("0ne00TEST"), pki: pki,
		hub: simulate.NewHub("hub-a.azure-devices.net", "hub-b.azure-devices.net")}
	tb.dps.Hub = tb.hub
	tb.db = openDB(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	tb.svc = startService(t, tb.db, fastConfig(tb.backends()))
	return tb
}

func (tb *testBundle) backends() apis {
	return apis{Mender: tb.mender, DPS: tb.dps, PKI: tb.pki, IoTHub: tb.hub}
}

// openDB opens the test's database at path: a SQLite file, or under
// TestPostgres a PostgreSQL schema of its own for each path, so a test
// that reopens a path (a restart) or opens it twice (two processes) meets
// the same database on either dialect.
func openDB(t *testing.T, path string) *store.DB {
	t.Helper()
	dsn := path
	if onPostgres(t) {
		dsn = postgresFor(t, path)
	}
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func startService(t *testing.T, db *store.DB, cfg testConfig) *provision.Service {
	t.Helper()
	svc, err := provision.New(db, cfg.build())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.Stop(ctx)
	})
	return svc
}

// gateway is a device key as the agent holds it.
type gateway struct {
	key crypto.Signer
	sig *protocol.Signed
	mac string
}

var macCounter atomic.Int32

func newGateway(t *testing.T) *gateway {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := protocol.MarshalPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	n := macCounter.Add(1)
	return &gateway{
		key: k,
		sig: &protocol.Signed{PublicKey: spki, Fingerprint: protocol.Fingerprint(spki), KeyType: protocol.KeyEd25519},
		mac: fmt.Sprintf("02:00:00:00:%02x:%02x", n>>8, n&0xff),
	}
}

func (g *gateway) sealKey(t *testing.T) []byte {
	t.Helper()
	k, err := protocol.DeriveSealKey(g.key)
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey().Bytes()
}

func (tb *testBundle) enroll(t *testing.T, g *gateway) *protocol.Status {
	t.Helper()
	st, err := tb.svc.Enroll(context.Background(), g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t)}, "192.0.2.7")
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return st
}

// waitFor long-polls like the agent until the device reaches want, or one
// of also: a state it may pass through on the way to a later one (a
// configured gateway was provisioned) where a test only needs either.
func (tb *testBundle) waitFor(t *testing.T, g *gateway, want gatehouse.State, also ...gatehouse.State) *protocol.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen, id := "", ""
	for {
		st, err := tb.svc.Wait(ctx, g.sig, seen, "192.0.2.7", 2*time.Second)
		if err != nil {
			t.Fatalf("waiting for %s (last %q): %v; steps: %s", want, seen, err, tb.stepsOf(id))
		}
		if st.State == string(want) || slices.Contains(also, gatehouse.State(st.State)) {
			return st
		}
		seen, id = st.State, st.DeviceID
	}
}

// stepsOf describes a device's steps, for a test that gave up waiting.
func (tb *testBundle) stepsOf(id string) string {
	d, err := tb.svc.Device(context.Background(), id)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, s := range d.Steps {
		fmt.Fprintf(&b, "%s %s (%d attempts) %s; ", s.Name, s.State, s.Attempts, s.LastError)
	}
	return b.String()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := gatehouse.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// step finds one of a device's steps; the zero step if it has none.
func step(d *gatehouse.Device, name gatehouse.StepName) gatehouse.Step {
	for _, s := range d.Steps {
		if s.Name == name {
			return s
		}
	}
	return gatehouse.Step{}
}

func stepOutput(d *gatehouse.Device, name gatehouse.StepName) map[string]string {
	return step(d, name).Output
}

// waitTimeout bounds each wait of these tests that is not a long poll: far
// more than it takes under the race detector on a loaded machine.
const waitTimeout = 60 * time.Second

// eventually polls cond until it holds or timeout passes, and says which.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}
