package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/provision"
	"gatehouse/sandbox"
	"gatehouse/simulate"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("gateways", 3, "how many simulated gateways enroll")
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	dbPath := fs.String("db", "", "database file to keep (default: a temporary one, deleted on exit)")
	logs := addLogFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 0 || *n > 10000 {
		fmt.Fprintln(stderr, "gatehouse: --gateways must be 0-10000")
		return 2
	}
	log, err := logs.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	if err := demo(ctx, *n, *listen, *dbPath, stdout, log); err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, gateways int, listen, dbPath string, stdout io.Writer, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if dbPath == "" {
		dbPath = filepath.Join(dir, "gatehouse.db")
	}
	sims, err := sandbox.Start(2 * time.Second)
	if err != nil {
		return err
	}
	defer sims.Close()
	simCfg := sims.Config()
	simCfg.Logger = log
	cfg, err := appFromConfig(simCfg)
	if err != nil {
		return err
	}
	cfg.Listen, cfg.DB, cfg.Logger = listen, dbPath, log
	cfg.SimulatedBackends = true // the page's header says so
	// Every simulated gateway speaks from loopback: one address for up to
	// 10,000 of them, as behind a NAT, which the per-address limit would
	// throttle. The demo has no flood to fear.
	cfg.DeviceRate = rate.Inf
	a, err := startApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	login, err := demoLogin(ctx, a.svc)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := startGateways(ctx, &wg, gateways, a.server.URL(), dir, sims, log); err != nil {
		return err
	}
	waitPending(ctx, a.svc, gateways)
	printDemo(stdout, a.server.URL(), login, dbPath)
	<-ctx.Done()
	log.Info("demo stopping")
	return nil
}

// startGateways runs n real agents, each with its own key, against url.
func startGateways(ctx context.Context, wg *sync.WaitGroup, n int, url, dir string, sims *sandbox.Simulators, log *slog.Logger) error {
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("sim-%d", i)
		keyPath := filepath.Join(dir, name, "mender-agent.pem")
		key, err := writeDemoKey(keyPath, i)
		if err != nil {
			return err
		}
		mc, err := sims.MenderClient(key, demoMAC(i), time.Second)
		if err != nil {
			return err
		}
		cfg := agent.Config{
			// The demo's server is plain HTTP on loopback, in this process.
			Server: url, InsecureHTTP: true, KeyPath: keyPath, OutDir: filepath.Join(dir, name, "out"),
			MAC: demoMAC(i), RestartCommands: []string{}, AgentVersion: "demo",
			Logger: log.With("gateway", name),
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			runMenderClient(ctx, mc, cfg.Logger)
		}()
		go func() {
			defer wg.Done()
			runDemoGateway(ctx, cfg, sims)
		}()
	}
	return nil
}

// runMenderClient is the gateway's Mender client: as on a real gateway it
// asks Mender for a token from boot on, so Mender holds the gateway pending
// before anyone approves it, and it gets its token once gatehouse has
// accepted its key.
func runMenderClient(ctx context.Context, mc *simulate.MenderClient, log *slog.Logger) {
	if err := mc.Run(ctx); err == nil {
		log.Info("simulated Mender client holds its device token: the gateway is connected to Mender", "attempts", mc.Attempts())
	}
}

func runDemoGateway(ctx context.Context, cfg agent.Config, sims *sandbox.Simulators) {
	res, err := agent.Run(ctx, cfg)
	switch {
	case err == nil:
		cfg.Logger.Info("simulated gateway holds its credentials", "name", res.Name, "files", cfg.OutDir)
		registerLikeIoTEdge(cfg, sims)
	case ctx.Err() == nil:
		cfg.Logger.Info("simulated gateway stopped", "reason", err)
	}
}

// registerLikeIoTEdge does what IoT Edge does on a real gateway once the
// agent has written iotedge.env: register with DPS using the symmetric key.
// DPS then assigns it to a hub, and gatehouse applies its manifest there.
func registerLikeIoTEdge(cfg agent.Config, sims *sandbox.Simulators) {
	env, err := readEnvFile(filepath.Join(cfg.OutDir, "iotedge.env"))
	if err != nil {
		cfg.Logger.Warn("simulated IoT Edge cannot read its settings", "err", err)
		return
	}
	if err := sims.DPS.State.Register(env["DPS_REGISTRATION_ID"], env["DPS_SYMMETRIC_KEY"], ""); err != nil {
		cfg.Logger.Warn("simulated IoT Edge could not register with DPS", "err", err)
		return
	}
	cfg.Logger.Info("simulated IoT Edge registered with DPS", "registration_id", env["DPS_REGISTRATION_ID"])
}

func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out, nil
}

// writeDemoKey writes the kinds of key real Mender clients make: RSA 3072
// (PKCS#1, Mender 3.x/4.x), Ed25519 (PKCS#8, Mender 5.x) and ECDSA P-256,
// and returns it for the gateway's Mender client.
func writeDemoKey(path string, i int) (crypto.Signer, error) {
	key, block, err := demoKey(i)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return key, os.WriteFile(path, pem.EncodeToMemory(block), 0o600)
}

func demoKey(i int) (crypto.Signer, *pem.Block, error) {
	switch i % 3 {
	case 1:
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		return k, &pem.Block{Type: "PRIVATE KEY", Bytes: der}, err
	case 2:
		k, err := rsa.GenerateKey(rand.Reader, 3072)
		if err != nil {
			return nil, nil, err
		}
		return k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}, nil
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalECPrivateKey(k)
	return k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}, err
}

// demoMAC is a locally administered unicast address, so it cannot clash
// with a real vendor's.
func demoMAC(i int) string {
	return net.HardwareAddr{0x02, 0x67, 0x68, byte(i >> 16), byte(i >> 8), byte(i)}.String()
}

// waitPending gives the gateways a moment to enroll, so the first 'devices
// list' a newcomer runs already shows them.
func waitPending(ctx context.Context, svc *provision.Service, n int) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		l, err := svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StatePending, Limit: 1})
		if err == nil && l.Total >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// demoCreds is how the demo's operator gets in: a user for the page, a
// token for the CLI.
type demoCreds struct {
	user, password, token string
}

func demoLogin(ctx context.Context, svc *provision.Service) (demoCreds, error) {
	c := demoCreds{user: "admin", password: rand.Text()}
	ctx = gatehouse.WithOrigin(ctx, gatehouse.Origin{Actor: "local:demo"})
	if _, err := svc.CreateUser(ctx, provision.UserSpec{Name: c.user, Role: gatehouse.RoleAdmin, Password: c.password}); err != nil {
		return c, err
	}
	var err error
	c.token, _, err = svc.CreateToken(ctx, provision.TokenSpec{Name: "demo-admin", Role: gatehouse.RoleAdmin})
	return c, err
}

func printDemo(w io.Writer, url string, c demoCreds, dbPath string) {
	fmt.Fprintf(w, `
gatehouse demo is running. It provisions into simulated Mender, Azure DPS,
IoT Hub and Vault servers (over HTTP, with the real clients), and simulated
gateways are waiting for approval.

  Web page:     %s/
  User:         %s
  Password:     %s
  Admin token:  %s  (for the CLI; the page takes it too)
  Database:     %s

Or, in another shell:

  export GATEHOUSE_SERVER=%s
  export GATEHOUSE_TOKEN=%s
  go run ./cmd/gatehouse devices list
  go run ./cmd/gatehouse devices approve ID --name gw-01
  go run ./cmd/gatehouse devices show ID
  go run ./cmd/gatehouse devices dismiss ID

Press Ctrl-C to stop.
`, url, c.user, c.password, c.token, dbPath, url, c.token)
}
