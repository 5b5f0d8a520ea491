package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/sandbox"
	"gatehouse/server"
	"gatehouse/store"
)

// agentBin is the agent built once for the tests that run it as a process.
var agentBin string

func TestMain(m *testing.M) {
	code := m.Run()
	if agentBin != "" {
		os.RemoveAll(filepath.Dir(agentBin))
	}
	os.Exit(code)
}

// buildAgent builds the static agent binary, as the packages do.
func buildAgent(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the agent binary; skipped in -short mode")
	}
	if agentBin != "" {
		return agentBin
	}
	dir, err := os.MkdirTemp("", "gatehouse-agent-bin-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "gatehouse-agent")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	agentBin = bin
	return bin
}

// testServer is a real gatehouse server with simulated backends.
type testServer struct {
	url, token string
	svc        *provision.Service
	sims       *sandbox.Simulators
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ctx := context.Background()
	sims, err := sandbox.Start(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sims.Close() })
	clients, err := sims.Config().Build()
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := provision.New(db, provision.Config{Backends: clients.Backends, Logger: quiet,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(svc)
	srv.Addr, srv.Logger = "127.0.0.1:0", quiet
	srv.DeviceRate = rate.Inf // parallel gateways on the one loopback address
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
	token, _, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "e2e", Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{url: srv.URL(), token: token, svc: svc, sims: sims}
}

// approveMAC approves, through the REST API, the pending gateway with mac.
func (s *testServer) approveMAC(t *testing.T, ctx context.Context, mac, name string) {
	t.Helper()
	id := s.pendingID(t, ctx, mac)
	body, _ := json.Marshal(map[string]string{"name": name})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/api/v1/devices/"+id+"/approve", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve %s: %s", name, resp.Status)
	}
}

func (s *testServer) pendingID(t *testing.T, ctx context.Context, mac string) string {
	t.Helper()
	for ctx.Err() == nil {
		l, err := s.svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StatePending, Limit: 1000})
		if err == nil {
			for _, d := range l.Devices {
				if d.MAC == mac {
					return d.ID
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("gateway %s never enrolled", mac)
	return ""
}

// dpsKey is the primary key DPS holds for a registration.
func (s *testServer) dpsKey(t *testing.T, regID string) string {
	t.Helper()
	for _, e := range s.sims.DPS.State.Enrollments() {
		if e.RegistrationID == regID {
			return e.PrimaryKey
		}
	}
	t.Fatalf("no DPS enrollment %s", regID)
	return ""
}

// gateway is a temp root laid out like a gateway with Mender 4.x and IoT
// Edge installed, and fake systemctl and iotedge that record their calls.
type gateway struct {
	root, calls, mac string
	env              []string
}

func newGateway(t *testing.T, serverURL, mac string, extraEnv ...string) *gateway {
	t.Helper()
	g := &gateway{root: t.TempDir(), mac: mac}
	g.calls = filepath.Join(t.TempDir(), "calls.log")
	bin := t.TempDir()
	for _, tool := range []string{"systemctl", "iotedge"} {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> \"$CALLS_LOG\"\n"
		g.write(t, filepath.Join(bin, tool), script, 0o755, false)
	}
	g.write(t, "/lib/systemd/system/mender-authd.service", "[Service]\nExecStart=/usr/bin/mender-auth daemon\n", 0o644, true)
	g.write(t, "/etc/mender/mender.conf", `{"ServerURL": "https://hosted.mender.io", "Security": {"AuthPrivateKey": "/data/mender/mender-agent.pem"}}`, 0o600, true)
	g.write(t, "/etc/gatehouse/agent.conf", "SERVER="+serverURL+"\nINSECURE_HTTP=yes\nCONFIG_TOML=/etc/aziot/config.toml\nBACKOFF_MAX=200ms\n", 0o644, true)
	// sysfs as on a board: the dummy interface has the lowest index, but
	// Mender's identity script (and so the agent) skips it.
	for name, v := range map[string][3]string{"lo": {"772", "1", "00:00:00:00:00:00"}, "dummy0": {"1", "2", "02:00:00:00:00:d0"}, "eth0": {"1", "3", mac}} {
		for i, f := range []string{"type", "ifindex", "address"} {
			g.write(t, filepath.Join("/sys/class/net", name, f), v[i]+"\n", 0o644, true)
		}
	}
	g.env = append([]string{"PATH=" + bin + ":/usr/bin:/bin", "CALLS_LOG=" + g.calls, "HOME=" + t.TempDir()}, extraEnv...)
	return g
}

func (g *gateway) write(t *testing.T, path, data string, mode os.FileMode, inRoot bool) {
	t.Helper()
	if inRoot {
		path = filepath.Join(g.root, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// writeMenderKey writes an Ed25519 key as Mender 5.x does (PKCS#8 PEM).
func (g *gateway) writeMenderKey(t *testing.T) {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	g.write(t, "/data/mender/mender-agent.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), 0o600, true)
}

// agentRun is one agent process.
type agentRun struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr lockedBuffer
	done   chan error
}

// lockedBuffer is the agent's stderr, read while the process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (g *gateway) start(t *testing.T, bin string, env ...string) *agentRun {
	t.Helper()
	r := &agentRun{cmd: exec.Command(bin, "--root", g.root), done: make(chan error, 1)}
	r.cmd.Env = append(append([]string{}, g.env...), env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() { r.cmd.Process.Kill() })
	return r
}

// wait returns the exit code.
func (r *agentRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-r.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		r.cmd.Process.Kill()
		t.Fatalf("agent did not finish; stderr:\n%s", r.stderr.String())
		return -1
	}
}

// TestBinaryEndToEnd runs the agent binary in a gateway root against a real
// server, through an HTTP proxy taken from the environment.
func TestBinaryEndToEnd(t *testing.T) {
	bin := buildAgent(t)
	ts := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	target, _ := url.Parse(ts.url)
	// The gateway knows the server by a name only the proxy can resolve, so
	// every request provably went through the proxy.
	serverURL := "http://gatehouse.test:" + target.Port()
	proxied := proxy(t, target, "gatehouse.test:"+target.Port())
	g := newGateway(t, serverURL, "dc:a6:32:01:02:03", "HTTP_PROXY="+proxied.url, "NO_PROXY=")
	// Mender has not started yet: the agent waits for the key.
	run := g.start(t, bin)
	waitFor(t, &run.stderr, "waiting for the Mender device key")
	g.writeMenderKey(t)
	waitFor(t, &run.stderr, "pending: waiting for an operator")
	ts.approveMAC(t, ctx, g.mac, "gw-e2e")
	if code := run.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, run.stderr.String())
	}
	if !strings.Contains(run.stdout.String(), "verification code ") || !strings.Contains(run.stdout.String(), "key fingerprint sha256:") {
		t.Errorf("stdout lacks the verification code and fingerprint: %q", run.stdout.String())
	}
	if proxied.count.Load() == 0 {
		t.Error("no request went through the proxy")
	}
	g.checkOutputs(t, ts, "gw-e2e")
	g.checkCalls(t, 1)

	// Provisioned: the next start exits 0 without the server.
	again := g.start(t, bin, "HTTP_PROXY=http://127.0.0.1:1")
	if code := again.wait(t); code != 0 || !strings.Contains(again.stderr.String(), "already provisioned as gw-e2e") {
		t.Fatalf("second start: exit %d\n%s", code, again.stderr.String())
	}
}

type countingProxy struct {
	url   string
	count atomic.Int64
}

// proxy is a forward HTTP proxy that knows one host name: host.
func proxy(t *testing.T, target *url.URL, host string) *countingProxy {
	p := &countingProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}, FlushInterval: -1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Host != host {
			http.Error(w, "proxy: unknown host "+r.URL.Host, http.StatusBadGateway)
			return
		}
		p.count.Add(1)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func waitFor(t *testing.T, buf *lockedBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(buf.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("agent never said %q; stderr:\n%s", text, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOutputs checks every file against the backends: the DPS key is the
// one DPS holds, the certificate goes with the key, config.toml parses.
func (g *gateway) checkOutputs(t *testing.T, ts *testServer, name string) {
	t.Helper()
	out := filepath.Join(g.root, "var/lib/gatehouse")
	read := func(path string, mode os.FileMode) string {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
		data, _ := os.ReadFile(path)
		return string(data)
	}
	key := ts.dpsKey(t, name)
	if got := read(filepath.Join(out, "device-name"), 0o644); got != name+"\n" {
		t.Errorf("device-name %q", got)
	}
	env := read(filepath.Join(out, "iotedge.env"), 0o600)
	if !strings.Contains(env, "DPS_SYMMETRIC_KEY="+key+"\n") || !strings.Contains(env, "DPS_REGISTRATION_ID="+name+"\n") {
		t.Errorf("iotedge.env does not hold the key DPS has:\n%s", env)
	}
	if _, err := tls.X509KeyPair([]byte(read(filepath.Join(out, "device.crt"), 0o644)), []byte(read(filepath.Join(out, "device.key"), 0o600))); err != nil {
		t.Errorf("device.crt and device.key do not match: %v", err)
	}
	read(filepath.Join(out, "ca.crt"), 0o644)
	g.checkConfigToml(t, read(filepath.Join(g.root, "etc/aziot/config.toml"), 0o600), name, key)
	g.checkNoLeftovers(t, out, filepath.Join(g.root, "etc/aziot"))
}

func (g *gateway) checkConfigToml(t *testing.T, data, name, key string) {
	t.Helper()
	var c struct {
		Provisioning struct {
			Source      string `toml:"source"`
			IDScope     string `toml:"id_scope"`
			Attestation struct {
				Method         string                 `toml:"method"`
				RegistrationID string                 `toml:"registration_id"`
				SymmetricKey   struct{ Value string } `toml:"symmetric_key"`
			} `toml:"attestation"`
		} `toml:"provisioning"`
	}
	if _, err := toml.Decode(data, &c); err != nil {
		t.Fatalf("config.toml is not TOML: %v\n%s", err, data)
	}
	a := c.Provisioning.Attestation
	if a.Method != "symmetric_key" || a.RegistrationID != name || a.SymmetricKey.Value != key ||
		c.Provisioning.IDScope == "" || c.Provisioning.Source != "dps" {
		t.Errorf("config.toml provisioning %+v", c.Provisioning)
	}
}

// checkTorn checks a cut mid-write left a torn temp file, which the next
// run must clean up.
func (g *gateway) checkTorn(t *testing.T, point string) {
	t.Helper()
	file, ok := strings.CutPrefix(point, "mid-write:")
	if !ok {
		return
	}
	dir := filepath.Join(g.root, "var/lib/gatehouse")
	if file == "config.toml" {
		dir = filepath.Join(g.root, "etc/aziot")
	}
	if torn, _ := filepath.Glob(filepath.Join(dir, "."+file+".tmp-*")); len(torn) != 1 {
		t.Errorf("cut mid-write of %s left %v, want one torn temp file", file, torn)
	}
}

// checkNoLeftovers: no temp file and no pending marker may remain.
func (g *gateway) checkNoLeftovers(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), ".pending") {
				t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
			}
		}
	}
}

// checkCalls checks the restarts ran (at least min times each).
func (g *gateway) checkCalls(t *testing.T, min int) {
	t.Helper()
	data, _ := os.ReadFile(g.calls)
	calls := string(data)
	for _, want := range []string{
		"systemctl restart mender-authd.service\n",
		"iotedge config apply -c " + filepath.Join(g.root, "etc/aziot/config.toml") + "\n",
	} {
		if n := strings.Count(calls, want); n < min {
			t.Errorf("%q ran %d times, want at least %d; calls:\n%s", strings.TrimSpace(want), n, min, calls)
		}
	}
	if strings.Contains(calls, "mender-client") {
		t.Errorf("restarted mender-client, which is not installed:\n%s", calls)
	}
}

// TestBinaryPowerCut kills the agent at each point where a power cut leaves
// a distinct state, starts it again, and checks the gateway ends up
// provisioned exactly as without the cut.
func TestBinaryPowerCut(t *testing.T) {
	bin := buildAgent(t)
	ts := startServer(t)
	points := []string{"after-bundle", "mid-write:iotedge.env", "mid-write:device.key", "mid-write:config.toml",
		"mid-write:device-name", "before-ack", "after-ack", "before-restart", "after-restart"}
	for i, point := range points {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			name := fmt.Sprintf("gw-cut-%d", i)
			g := newGateway(t, ts.url, fmt.Sprintf("02:00:00:00:01:%02x", i))
			g.writeMenderKey(t)
			run := g.start(t, bin, "GATEHOUSE_AGENT_CRASH_AT="+point)
			ts.approveMAC(t, ctx, g.mac, name)
			if code := run.wait(t); code != 137 {
				t.Fatalf("exit %d, want 137 from the simulated power cut; stderr:\n%s", code, run.stderr.String())
			}
			g.checkTorn(t, point)
			again := g.start(t, bin)
			if code := again.wait(t); code != 0 {
				t.Fatalf("restart after the cut: exit %d; stderr:\n%s", code, again.stderr.String())
			}
			g.checkOutputs(t, ts, name)
			g.checkCalls(t, 1)
			if d := ts.delivered(t, ctx, g.mac); !d {
				t.Error("the server still holds the bundle: receipt never confirmed")
			}
		})
	}
}

// delivered reports whether the gateway confirmed receipt of its bundle.
func (s *testServer) delivered(t *testing.T, ctx context.Context, mac string) bool {
	t.Helper()
	l, err := s.svc.ListDevices(ctx, provision.ListFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, d := range l.Devices {
		if d.MAC == mac {
			id = d.ID
		}
	}
	events, err := s.svc.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Kind == "bundle_delivered" {
			return true
		}
	}
	return false
}
