package uitest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/internal/keytest"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/sandbox"
	"gatehouse/server"
	"gatehouse/simulate"
	"gatehouse/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// env is a running gatehouse: database, provisioning service and HTTP
// server over simulated Mender, DPS, IoT Hub and Vault, plus the simulated
// gateways started in it.
type env struct {
	t     *testing.T
	ctx   context.Context // the test's; waits bound themselves (envTimeout)
	dir   string
	db    *store.DB
	url   string
	token string // an operator's API token
	svc   *provision.Service
	sims  *sandbox.Simulators

	// skew moves the database clock, to create gateways last seen long ago.
	skew atomic.Int64

	agents     sync.WaitGroup
	stopAgents context.CancelFunc
	agentCtx   context.Context
	mu         sync.Mutex
	results    map[string]*agent.Result // by MAC, once provisioned
	menders    map[string]*simulate.MenderClient
}

// envTimeout bounds each wait on the server or the gateways: far more than
// they take, even under the race detector on a loaded machine, but a stuck
// one fails with what was awaited rather than hanging the test.
const envTimeout = 60 * time.Second

// newEnv starts everything; t.Cleanup stops it in the right order. opts
// change the HTTP server before it starts (say, to offer single sign-on).
func newEnv(t *testing.T, opts ...func(*server.Server)) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with the provisioning config changed by tune first.
func newEnvWith(t *testing.T, tune func(*provision.Config), opts ...func(*server.Server)) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, ctx: ctx, dir: t.TempDir(), results: map[string]*agent.Result{},
		menders: map[string]*simulate.MenderClient{}}
	sims, err := sandbox.Start(200 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	e.sims = sims
	t.Cleanup(func() { sims.Close() })
	cfg := sims.Config()
	cfg.Vault.Retries = -1 // a failing Vault fails the step at once, not after backoff
	clients, err := cfg.Build()
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(e.dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	db.Now = func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	pcfg := provision.Config{
		Backends: clients.Backends, Logger: quiet,
		RetryBase: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond,
		PollInterval: 10 * time.Millisecond, FollowPollMin: 100 * time.Millisecond,
	}
	if tune != nil {
		tune(&pcfg)
	}
	e.svc, err = provision.New(db, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.svc.StopAndCancel(c)
	})
	e.startHTTP(opts...)
	e.agentCtx, e.stopAgents = context.WithCancel(ctx)
	// Registered last so it runs first: agents stop before the server does.
	t.Cleanup(func() {
		e.stopAgents()
		e.agents.Wait()
	})
	if e.token, _, err = e.svc.CreateToken(ctx, provision.TokenSpec{Name: "alice", Role: gatehouse.RoleOperator}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) startHTTP(opts ...func(*server.Server)) {
	srv := server.New(e.svc)
	srv.Addr, srv.LongPoll, srv.Logger = "127.0.0.1:0", 3*time.Second, quiet
	srv.DeviceRate = rate.Inf // every simulated gateway speaks from the one loopback address
	srv.LoginRate = rate.Inf  // and every test browser logs in from it
	for _, o := range opts {
		o(srv)
	}
	if err := srv.Open(); err != nil {
		e.t.Fatal(err)
	}
	e.url = srv.URL()
	e.t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(c)
	})
}

// gateway starts a real agent with a fresh key, as a gateway on first boot.
// Once provisioned it can register with DPS like IoT Edge (registerEdge).
func (e *env) gateway(mac string, ecKey bool) {
	e.t.Helper()
	dir := filepath.Join(e.dir, strings.ReplaceAll(mac, ":", ""))
	keyPath := filepath.Join(dir, "mender-agent.pem")
	key, err := writeKey(keyPath, ecKey)
	if err != nil {
		e.t.Fatal(err)
	}
	e.menderClient(mac, key)
	cfg := agent.Config{Server: e.url, InsecureHTTP: true, KeyPath: keyPath, OutDir: filepath.Join(dir, "out"), MAC: mac,
		RestartCommands: []string{}, Logger: quiet, BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond}
	e.agents.Go(func() {
		res, err := agent.Run(e.agentCtx, cfg)
		if err == nil {
			e.mu.Lock()
			e.results[mac] = res
			e.mu.Unlock()
		}
	})
}

// menderClient runs the gateway's Mender client, which asks Mender for a
// token from boot on, as the real one does.
func (e *env) menderClient(mac string, key crypto.Signer) {
	e.t.Helper()
	mc, err := e.sims.MenderClient(key, mac, 200*time.Millisecond)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.menders[mac] = mc
	e.mu.Unlock()
	e.agents.Go(func() { mc.Run(e.agentCtx) })
}

// registerEdge does what IoT Edge does with the files the agent wrote:
// register with DPS, which then assigns the gateway to a hub.
func (e *env) registerEdge(mac string) {
	e.t.Helper()
	path := filepath.Join(e.dir, strings.ReplaceAll(mac, ":", ""), "out", "iotedge.env")
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	if err := e.sims.DPS.State.Register(vars["DPS_REGISTRATION_ID"], vars["DPS_SYMMETRIC_KEY"], ""); err != nil {
		e.t.Fatal(err)
	}
}

func writeKey(path string, ec bool) (crypto.Signer, error) {
	var block *pem.Block
	var key crypto.Signer
	if ec {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalECPrivateKey(k)
		key, block = k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	} else {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		key, block = k, &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return key, os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

// enrollAt enrolls a gateway directly through the service, as if it had
// introduced itself `ago` and not been heard from since: a silent entry.
func (e *env) enrollAt(mac, addr string, ago time.Duration) string {
	e.t.Helper()
	sig, sealKey := keytest.Ed25519(e.t)
	e.skew.Store(int64(-ago))
	defer e.skew.Store(0)
	st, err := e.svc.Enroll(e.ctx, sig, protocol.EnrollRequest{MAC: mac, SealKey: sealKey}, addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.DeviceID
}

// seedPending puts n waiting gateways straight into the database, in one
// transaction: the devices and keys n enrollments would leave, bar each
// timeline's first line, in a fraction of the time. Each has a real Ed25519
// key, so fingerprints and codes are as they would be; the seal keys are
// random (making X25519 keys would double the time under the race
// detector), so nothing can be sealed to a seeded gateway. mac names the
// i-th gateway. Call it before a page is open: the page is not told of
// seeded gateways.
func (e *env) seedPending(n int, mac func(i int) string) {
	e.t.Helper()
	seeds := make([]store.Seed, n)
	for i := range seeds {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			e.t.Fatal(err)
		}
		spki, err := protocol.MarshalPublicKey(pub)
		if err != nil {
			e.t.Fatal(err)
		}
		seal := make([]byte, 32) // any 32 bytes are an X25519 public key
		rand.Read(seal)
		m, err := gatehouse.NormalizeMAC(mac(i))
		if err != nil {
			e.t.Fatal(err)
		}
		fp := protocol.Fingerprint(spki)
		seeds[i] = store.Seed{
			Device: gatehouse.Device{ID: newID(), MAC: m, Fingerprint: fp, SourceAddr: "10.1.0.1"},
			Key:    gatehouse.DeviceKey{Fingerprint: fp, KeyType: protocol.KeyEd25519, PublicKey: spki, SealKey: seal},
		}
	}
	if err := e.db.SeedPending(e.ctx, seeds); err != nil {
		e.t.Fatalf("seeding %d gateways: %v", n, err)
	}
}

// newID makes a device id as gatehouse does: 12 characters of lower-case
// base32.
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:12]
}

// until polls cond until it holds or envTimeout passes, and says which.
func (e *env) until(cond func() bool) bool {
	deadline := time.Now().Add(envTimeout)
	for !cond() {
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// pending waits until n gateways are pending and returns them by MAC.
func (e *env) pending(n int) map[string]*gatehouse.Device {
	e.t.Helper()
	var l *provision.DeviceList
	if !e.until(func() bool {
		var err error
		l, err = e.svc.ListDevices(e.ctx, provision.ListFilter{State: gatehouse.StatePending, Limit: 1000})
		return err == nil && l.Total == n
	}) {
		e.t.Fatalf("never saw %d pending gateways within %v", n, envTimeout)
	}
	out := map[string]*gatehouse.Device{}
	for _, d := range l.Devices {
		out[d.MAC] = d
	}
	return out
}

func (e *env) device(id string) *gatehouse.Device {
	e.t.Helper()
	d, err := e.svc.Device(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// waitState waits until the device reaches one of the states.
func (e *env) waitState(id string, states ...gatehouse.State) *gatehouse.Device {
	e.t.Helper()
	var d *gatehouse.Device
	if !e.until(func() bool {
		var err error
		d, err = e.svc.Device(e.ctx, id)
		return err == nil && slices.Contains(states, d.State)
	}) {
		e.t.Fatalf("device %s did not reach %v within %v (now %s)", id, states, envTimeout, e.device(id).State)
	}
	return d
}

// waitAgent waits until the agent of mac holds its credentials, and its
// Mender client its device token: gatehouse accepted the key Mender held
// pending since boot.
func (e *env) waitAgent(mac string) {
	e.t.Helper()
	if !e.until(func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		_, ok := e.results[mac]
		return ok && e.menders[mac].Token() != ""
	}) {
		e.t.Fatalf("the agent of %s did not finish, or its Mender client got no token, within %v", mac, envTimeout)
	}
}

func (e *env) approve(id, name string) {
	e.t.Helper()
	if _, err := e.svc.Approve(e.ctx, "token:setup", id, provision.Approval{Name: name}); err != nil {
		e.t.Fatalf("approve %s as %s: %v", id, name, err)
	}
}

func mac(i int) string { return fmt.Sprintf("02:00:5e:10:00:%02x", i) }
