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
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/sandbox"
	"gatehouse/simulate"
)

// demoAbout is demo --help's text, before the flags.
const demoAbout = `Usage: gatehouse demo [flags]

Runs gatehouse on this machine with everything around it simulated: Mender,
Azure DPS, IoT Hub and Vault servers on loopback ports, which the real clients
talk to over HTTP, and a few simulated gateways that enroll and wait for
approval. It prints the web page's address, a user and password, and an API
token for the CLI; approve a gateway in the page or with the CLI and watch it
be provisioned. Nothing real is provisioned, and the database is a temporary
file unless --db names one. Ctrl-C stops it.

Flags:
`

// demoOptions are demo's flags.
type demoOptions struct {
	gateways   int
	listen, db string
	// faults makes simulated Mender fail one gateway's step until an
	// operator retries it: see retryFault.
	faults bool
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// parseFlags calls it with the output set to stdout when help is asked
	// for, and to stderr after a mistake.
	fs.Usage = func() { demoUsage(fs.Output(), fs) }
	var o demoOptions
	fs.IntVar(&o.gateways, "gateways", 3, "how many simulated gateways enroll (0: none; the demo says how to enroll one with the agent)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "`ADDR` to serve the web page and API on")
	fs.StringVar(&o.db, "db", "", "database `FILE` to keep (default: a temporary one, deleted on exit)")
	fs.BoolVar(&o.faults, "faults", false, "simulated Mender fails the first gateway's Mender step until you press Retry on its page, to show a failing step and Retry")
	logs := addLogFlags(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "gatehouse: demo takes no arguments, not %q (see 'gatehouse demo --help')\n", fs.Arg(0))
		return 2
	case o.gateways < 0 || o.gateways > 10000:
		fmt.Fprintln(stderr, "gatehouse: --gateways must be 0-10000")
		return 2
	case o.faults && o.gateways == 0:
		fmt.Fprintln(stderr, "gatehouse: --faults fails a simulated gateway's step, so it needs --gateways 1 or more")
		return 2
	}
	log, err := logs.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	if err := demo(ctx, o, stdout, log); err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	return 0
}

func demoUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, demoAbout)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

func demo(ctx context.Context, o demoOptions, stdout io.Writer, log *slog.Logger) error {
	dir, err := os.MkdirTemp("", "gatehouse-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := banner{db: o.db, keptDB: o.db != "", gateways: o.gateways, faults: o.faults}
	if b.db == "" {
		b.db = filepath.Join(dir, "gatehouse.db")
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
	cfg.Listen, cfg.DB, cfg.Logger = o.listen, b.db, log
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
	b.url = a.server.URL()
	if b.login, err = demoLogin(ctx, a.svc); err != nil {
		return err
	}
	if o.faults {
		// Before any gateway enrolls, so none can be approved before it.
		f := &retryFault{svc: a.svc, mac: demoMAC(faultyGateway), log: log.With("gateway", demoName(faultyGateway))}
		sims.Mender.Faults.SetRefusal(&simulate.Refusal{Match: f.match, Status: http.StatusInternalServerError,
			Message: "simulated failure (demo --faults): fails until someone presses Retry"})
	}
	if o.gateways == 0 {
		if b.agent, err = agentForOperator(dir); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := startGateways(ctx, &wg, o.gateways, b.url, dir, sims, log); err != nil {
		return err
	}
	// The banner comes after the gateways' enrollment lines, so they do
	// not push it off the screen, and it can list their codes.
	b.pending = waitPending(ctx, a.svc, o.gateways)
	b.print(stdout)
	<-ctx.Done()
	log.Info("demo stopping")
	return nil
}

// demoName is simulated gateway i's name in the demo's log and banner.
func demoName(i int) string { return fmt.Sprintf("sim-%d", i) }

// startGateways runs n real agents, each with its own key, against url.
// Their own info lines go to debug: they repeat, from the gateway's side,
// what the server logs, and would bury the banner; their warnings stay, and
// the demo logs each gateway's milestones itself.
func startGateways(ctx context.Context, wg *sync.WaitGroup, n int, url, dir string, sims *sandbox.Simulators, log *slog.Logger) error {
	for i := 1; i <= n; i++ {
		name := demoName(i)
		keyPath := filepath.Join(dir, name, "mender-agent.pem")
		key, err := writeDemoKey(keyPath, i)
		if err != nil {
			return err
		}
		mc, err := sims.MenderClient(key, demoMAC(i), time.Second)
		if err != nil {
			return err
		}
		glog := log.With("gateway", name)
		cfg := agent.Config{
			// The demo's server is plain HTTP on loopback, in this process.
			Server: url, InsecureHTTP: true, KeyPath: keyPath, OutDir: filepath.Join(dir, name, "out"),
			MAC: demoMAC(i), RestartCommands: []string{}, AgentVersion: "demo",
			Logger: slog.New(provision.InfoAsDebug(glog.Handler())),
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			runMenderClient(ctx, mc, glog)
		}()
		go func() {
			defer wg.Done()
			runDemoGateway(ctx, cfg, sims, glog)
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

// runDemoGateway runs the agent, then what IoT Edge would do; log is the
// demo's, at info, for the milestones.
func runDemoGateway(ctx context.Context, cfg agent.Config, sims *sandbox.Simulators, log *slog.Logger) {
	res, err := agent.Run(ctx, cfg)
	switch {
	case err == nil:
		log.Info("simulated gateway holds its credentials", "name", res.Name, "files", cfg.OutDir)
		registerLikeIoTEdge(agent.Config{OutDir: cfg.OutDir, Logger: log}, sims)
	case ctx.Err() == nil:
		log.Warn("simulated gateway stopped", "reason", err)
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
// list' a newcomer runs already shows them, and returns those pending.
func waitPending(ctx context.Context, svc *provision.Service, n int) []*gatehouse.Device {
	if n == 0 {
		return nil
	}
	// Watching before the first look, so an enrollment in between wakes us.
	w, stop := svc.Notifier().WatchAll()
	defer stop()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		l, err := svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StatePending, Limit: n})
		if err == nil && l.Total >= n {
			return l.Devices
		}
		select {
		case <-w.Wake():
			w.Take()
		case <-deadline.C:
			if l == nil {
				return nil
			}
			return l.Devices
		case <-ctx.Done():
			return nil
		}
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

// banner is what the demo prints once it is up: a screen's worth, after
// the start-up lines, so the way in is on screen when the operator looks.
type banner struct {
	url      string
	login    demoCreds
	db       string
	keptDB   bool
	gateways int
	pending  []*gatehouse.Device
	faults   bool
	agent    agentCommand // with --gateways 0
}

// cli is how the banner spells a gatehouse command: the README's way, run
// from the repository.
const cli = "go run ./cmd/gatehouse"

func (b banner) print(w io.Writer) {
	var out strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&out, format+"\n", args...) }
	para := func(s string) { out.WriteString(wrap(s, 78)) }
	p("")
	if b.gateways == 0 {
		para("gatehouse demo: gatehouse with simulated Mender, DPS, IoT Hub and Vault servers. Nothing real is provisioned.")
	} else {
		para(fmt.Sprintf("gatehouse demo: gatehouse with simulated Mender, DPS, IoT Hub and Vault servers, and %s. Nothing real is provisioned.", plural(b.gateways, "simulated gateway")))
	}
	p("")
	p("  Page   %s/   user %s, password %s", b.url, b.login.user, b.login.password)
	p("  Token  %s   (admin; for the CLI, the page takes it too)", b.login.token)
	p("  Shell  export GATEHOUSE_SERVER=%s GATEHOUSE_TOKEN=%s", b.url, b.login.token)
	p("")
	if b.gateways == 0 {
		para("Next: no simulated gateways (--gateways 0). Enroll one with the agent, from another shell in the repository:")
		p("  go run ./cmd/gatehouse-agent --server %s --insecure-http --no-restart \\", b.url)
		p("    --key %s --mac %s --out %s", b.agent.key, b.agent.mac, b.agent.out)
		para("It waits under Pending in the page with its verification code; approve it there with a name, or from the shell above:")
	} else {
		para("Next: log in to the page. The gateways wait under Pending with the codes their consoles show " +
			codes(b.pending, b.gateways) + ". Type a name, press Enter, and watch it go through to configured. Or, in a shell:")
	}
	p("  %s devices list", cli)
	p("  %s devices approve ID --name gw-01", cli)
	p("  %s devices show ID", cli)
	if b.faults {
		p("")
		para(fmt.Sprintf("--faults: simulated Mender fails %s's Mender step (a 500 at each attempt) until it is retried. "+
			"Approve %s: its page shows the failed step, its error and a Retry button. Press it (or run%s) and the step succeeds.",
			demoName(faultyGateway), demoName(faultyGateway), strings.ReplaceAll(" devices retry ID", " ", nbsp)))
	}
	p("")
	if b.keptDB {
		p("Database %s (kept). Ctrl-C stops the demo.", b.db)
	} else {
		p("Database %s (deleted at exit). Ctrl-C stops the demo.", b.db)
	}
	io.WriteString(w, out.String())
}

// codes lists the pending gateways' verification codes by their demo
// names, a few of them.
func codes(pending []*gatehouse.Device, want int) string {
	const shown = 4
	names := map[string]string{}
	for i := 1; i <= min(want, 10000); i++ {
		names[demoMAC(i)] = demoName(i)
	}
	var list []string
	for _, d := range pending {
		if len(list) == shown {
			break
		}
		// Non-breaking spaces, so wrap keeps a name and its code on a line.
		list = append(list, strings.ReplaceAll(names[d.MAC]+" "+protocol.FormatCode(d.VerificationCode), " ", nbsp))
	}
	// Newest first from the store; by name reads better.
	sort.Strings(list)
	switch {
	case len(pending) == 0:
		return "(they are still enrolling)"
	case len(pending) > shown:
		list = append(list, fmt.Sprintf("and %d more", len(pending)-shown))
	}
	if len(pending) < want {
		list = append(list, "the rest still enrolling")
	}
	return "(" + strings.Join(list, ", ") + ")"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// nbsp joins words wrap must not break apart; it prints as a space.
const nbsp = "\u00a0"

// wrap breaks s into lines of at most width columns, at plain spaces, each
// ending in a newline; a word longer than width gets a line of its own.
func wrap(s string, width int) string {
	var out, line strings.Builder
	cols := 0
	for _, word := range strings.Split(s, " ") {
		if word == "" {
			continue
		}
		n := utf8.RuneCountInString(word)
		if cols > 0 && cols+1+n > width {
			out.WriteString(line.String() + "\n")
			line.Reset()
			cols = 0
		}
		if cols > 0 {
			line.WriteByte(' ')
			cols++
		}
		line.WriteString(word)
		cols += n
	}
	if cols > 0 {
		out.WriteString(line.String() + "\n")
	}
	return strings.ReplaceAll(out.String(), nbsp, " ")
}

// agentCommand is what --gateways 0 tells the operator to run: a key the
// demo wrote for it, and where the agent is to write its files.
type agentCommand struct{ key, mac, out string }

// agentForOperator writes a device key into the demo's directory for an
// agent the operator starts by hand.
func agentForOperator(dir string) (agentCommand, error) {
	c := agentCommand{key: filepath.Join(dir, "gateway", "mender-agent.pem"), mac: demoMAC(0), out: filepath.Join(dir, "gateway", "out")}
	_, err := writeDemoKey(c.key, 1) // Ed25519, as Mender 5.x makes
	return c, err
}

// faultyGateway is the simulated gateway --faults picks on: the first, so
// it is there whatever --gateways says.
const faultyGateway = 1

// retryFault keeps simulated Mender failing one gateway's preauthorization,
// and so its Mender step, until an operator has asked gatehouse to retry
// that gateway: a real backend refusing a device for a reason someone must
// go and fix, after which they press Retry. It asks gatehouse at each
// attempt, so the attempt the retry starts is already let through.
type retryFault struct {
	svc *provision.Service
	mac string
	log *slog.Logger

	mu      sync.Mutex
	refused bool // logged the first refusal
	lifted  bool // a retry was asked for: let everything through
}

// match is the Refusal's: the gateway's preauthorizations, until a retry.
func (f *retryFault) match(c simulate.Call) bool {
	if !simulate.IsMenderPreauthorization(c, f.mac) {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lifted {
		return false
	}
	if f.retried() {
		f.lifted = true
		f.log.Info("simulated fault lifted: a retry was asked for, so simulated Mender now preauthorizes this gateway", "mac", f.mac)
		return false
	}
	if !f.refused {
		f.refused = true
		f.log.Warn("simulated fault (--faults): simulated Mender refuses this gateway's preauthorization until someone retries it", "mac", f.mac)
	}
	return true
}

// retried says whether a retry has been asked for a device with the
// gateway's MAC. A lookup that fails counts as none: the step fails once
// more and its next attempt asks again.
func (f *retryFault) retried() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := f.svc.ListDevices(ctx, provision.ListFilter{Search: f.mac, Limit: 100})
	if err != nil {
		f.log.Warn("simulated fault: cannot look the gateway up", "err", err)
		return false
	}
	for _, d := range l.Devices {
		if !strings.EqualFold(d.MAC, f.mac) {
			continue
		}
		events, err := f.svc.Events(ctx, d.ID)
		if err != nil {
			f.log.Warn("simulated fault: cannot read the gateway's events", "device", d.ID, "err", err)
			continue
		}
		for _, e := range events {
			if e.Kind == provision.EventRetryRequested {
				return true
			}
		}
	}
	return false
}
