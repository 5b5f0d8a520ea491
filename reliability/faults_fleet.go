package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/client"
	"gatehouse/simulate"
)

// This file holds what the faults and outage scenarios share: a fleet of
// gateways that enroll through a real serve process, are approved over the
// REST API as an operator would, and end holding their bundles; and the
// count of what each backend holds for them at the end.

// backendNames are the four backends, in the order figures are printed.
var backendNames = []string{"mender", "dps", "vault", "iothub"}

// server is one backend's simulator, by name.
func (b *Backends) server(name string) *simulate.Server {
	switch name {
	case "mender":
		return b.Mender.Server
	case "dps":
		return b.DPS.Server
	case "vault":
		return b.Vault.Server
	case "iothub":
		return b.Hub.Server
	}
	return nil
}

// fleet is n gateways whose agents run against one serve process.
type fleet struct {
	h    *Harness
	b    *Backends
	srv  *Server
	op   *client.Client
	gws  []*Gateway
	name map[string]string // MAC → the name the operator gives it

	agentsDone chan struct{}
	mu         sync.Mutex
	agentErrs  []error
	edges      bool           // IoT Edge registers each gateway as soon as it holds its bundle
	approvals  map[string]int // MAC → approval requests it took
	approveMax time.Duration  // the longest approval, its retries included
	stopAgents context.CancelFunc
}

// startFleet starts the simulators and a serve process on them, and n
// agents, and waits until all n gateways are pending. Names are
// prefix-NNNN. With edges, each gateway registers with DPS as IoT Edge
// would as soon as its agent holds the bundle.
func startFleet(ctx context.Context, h *Harness, n int, prefix string, edges bool, serveArgs ...string) (*fleet, error) {
	b, err := h.StartBackends(200 * time.Millisecond)
	if err != nil {
		return nil, err
	}
	f := &fleet{h: h, b: b, name: map[string]string{}, approvals: map[string]int{}, agentsDone: make(chan struct{}), edges: edges}
	// Every agent comes from 127.0.0.1: the per-address limit is off.
	args := append([]string{"--device-rate", "0"}, serveArgs...)
	if f.srv, err = h.StartServer(ctx, ServerOptions{Config: b.EnvFile, Args: args}); err != nil {
		b.Close()
		return nil, err
	}
	if err := f.start(ctx, n, prefix); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *fleet) start(ctx context.Context, n int, prefix string) error {
	var err error
	if f.op, err = f.srv.OperatorClient(ctx, "reliability"); err != nil {
		return err
	}
	if f.gws, err = f.h.NewGateways(n, 0); err != nil {
		return err
	}
	for i, g := range f.gws {
		f.name[g.MAC] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	agentCtx, stop := context.WithCancel(ctx)
	f.stopAgents = stop
	var wg sync.WaitGroup
	for _, g := range f.gws {
		wg.Go(func() {
			_, err := g.RunAgent(agentCtx, f.srv.URL)
			if err == nil && f.edges {
				err = f.registerEdge(g)
			}
			if err != nil {
				f.mu.Lock()
				f.agentErrs = append(f.agentErrs, fmt.Errorf("agent %s: %w", f.name[g.MAC], err))
				f.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); close(f.agentsDone) }()
	_, err = WaitDevices(ctx, f.op, gatehouse.StatePending, n, f.h.enrollWait(n))
	return err
}

// enrollWait is how long n agents may take to enroll on a loaded machine.
func (h *Harness) enrollWait(n int) time.Duration {
	return time.Minute + time.Duration(n)*100*time.Millisecond
}

// Close stops the agents, the server and the simulators.
func (f *fleet) Close() {
	if f.stopAgents != nil {
		f.stopAgents()
		<-f.agentsDone
	}
	f.srv.Kill()
	f.b.Close()
}

// approveAll approves every pending gateway of the fleet over the REST
// API, conc at a time. An approval answered 503 (a name check a backend
// could not answer) is tried again, as an operator would; one whose answer
// was lost on the way and that finds the gateway already approved under
// its name is done.
func (f *fleet) approveAll(ctx context.Context, conc int, within time.Duration) error {
	pending, err := listDevices(ctx, f.op, gatehouse.StatePending)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(f.gws))
	sem := make(chan struct{}, conc)
	for _, g := range f.gws {
		d := pending[g.MAC]
		if d == nil {
			return fmt.Errorf("gateway %s is not pending", g.MAC)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f.approve(ctx, d.ID, g.MAC); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func (f *fleet) approve(ctx context.Context, id, mac string) error {
	name := f.name[mac]
	start := time.Now()
	defer func() {
		f.mu.Lock()
		f.approveMax = max(f.approveMax, time.Since(start))
		f.mu.Unlock()
	}()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		f.approvals[mac]++
		f.mu.Unlock()
		// Past the server's 15 s name check, with room for a loaded machine.
		callCtx, cancel := context.WithTimeout(ctx, 45*time.Second)
		_, err := f.op.Approve(callCtx, id, name, nil)
		cancel()
		if err == nil || f.approvedAs(ctx, id, name) {
			return nil
		}
		if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("approve %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("approve %s: still refused when the approvals' time ran out: %w", name, err)
		case <-tick.C:
		}
	}
}

// approvedAs says whether the gateway already left pending under name.
func (f *fleet) approvedAs(ctx context.Context, id, name string) bool {
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d, err := f.op.Device(callCtx, id)
	return err == nil && d.State != gatehouse.StatePending && d.Name == name
}

// details reads every gateway of the fleet whole, its steps' outputs and
// attempts included, which the device list leaves out; keyed by MAC.
func (f *fleet) details(ctx context.Context, listed map[string]*gatehouse.Device) (map[string]*gatehouse.Device, error) {
	out := map[string]*gatehouse.Device{}
	for mac, d := range listed {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		full, err := f.op.Device(callCtx, d.ID)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read gateway %s: %w", d.Name, err)
		}
		out[mac] = full
	}
	return out, nil
}

// approvalTries is how many approval requests the gateway took.
func (f *fleet) approvalTries(mac string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.approvals[mac]
}

// approvalRequests is how many approval requests the fleet took in all.
func (f *fleet) approvalRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.approvals {
		n += v
	}
	return n
}

// waitBundles waits until every agent has ended, holding its bundle.
func (f *fleet) waitBundles(ctx context.Context, within time.Duration) error {
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-f.agentsDone:
	case <-t.C:
		return fmt.Errorf("%d of %d gateways hold their bundle %v after the last approval", f.bundled(), len(f.gws), within)
	case <-ctx.Done():
		return ctx.Err()
	}
	f.mu.Lock()
	err := errors.Join(f.agentErrs...)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for _, g := range f.gws {
		if name, ok := g.Bundled(); !ok || name != f.name[g.MAC] {
			return fmt.Errorf("gateway %s: bundle for %q, written %v", f.name[g.MAC], name, ok)
		}
	}
	return nil
}

func (f *fleet) bundled() int {
	n := 0
	for _, g := range f.gws {
		if _, ok := g.Bundled(); ok {
			n++
		}
	}
	return n
}

// registerEdge does what IoT Edge does on a gateway once it holds its
// bundle: registers with DPS under the registration id and key the bundle
// carries, so DPS assigns it to the hub and gatehouse applies its manifest.
func (f *fleet) registerEdge(g *Gateway) error {
	env, err := readKV(filepath.Join(g.OutDir, "iotedge.env"))
	if err != nil {
		return err
	}
	if err := f.b.DPS.State.Register(env["DPS_REGISTRATION_ID"], env["DPS_SYMMETRIC_KEY"], ""); err != nil {
		return fmt.Errorf("register with DPS: %w", err)
	}
	return nil
}

func readKV(path string) (map[string]string, error) {
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

// secrets are the credentials in the serve config, which no reason shown
// to an operator may carry.
func (f *fleet) secrets() ([]string, error) {
	env, err := readKV(f.b.EnvFile)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range []string{"GATEHOUSE_MENDER_TOKEN", "GATEHOUSE_VAULT_TOKEN", "GATEHOUSE_DPS_CONNECTION_STRING", "GATEHOUSE_IOTHUB_CONNECTION_STRINGS"} {
		for _, part := range strings.FieldsFunc(env[k], func(r rune) bool { return r == ';' || r == ' ' }) {
			if _, key, ok := strings.Cut(part, "SharedAccessKey="); ok {
				part = key
			}
			if len(part) >= 16 && !strings.Contains(part, "=") {
				out = append(out, part)
			}
		}
	}
	return out, nil
}

// countObjects checks that each backend holds exactly one live object per
// gateway, the one the gateway's step recorded, and nothing else: a
// missing object is a loss, a second one (or one for no gateway) a
// duplicate.
func (f *fleet) countObjects(devices map[string]*gatehouse.Device) *tally {
	t := &tally{}
	byName := map[string]*gatehouse.Device{}
	for _, g := range f.gws {
		d := devices[g.MAC]
		if d == nil {
			t.add(1, 0, "gateway %s is not on the server", f.name[g.MAC])
			continue
		}
		byName[d.Name] = d
	}
	f.countMender(t, devices)
	f.countDPS(t, byName)
	f.countVault(t, byName)
	f.countHub(t, byName)
	return t
}

func (f *fleet) countMender(t *tally, devices map[string]*gatehouse.Device) {
	held := map[string][]gatehouse.MenderDevice{}
	for _, md := range f.b.Mender.State.Devices() {
		held[md.IdentityData["mac"]] = append(held[md.IdentityData["mac"]], md)
	}
	for _, g := range f.gws {
		mds := held[g.MAC]
		delete(held, g.MAC)
		switch {
		case len(mds) == 0:
			t.add(1, 0, "mender holds no device for %s", f.name[g.MAC])
			continue
		case len(mds) > 1:
			t.add(0, len(mds)-1, "mender holds %d devices for %s", len(mds), f.name[g.MAC])
		}
		live := 0
		for _, as := range mds[0].AuthSets {
			if as.Status == gatehouse.MenderAccepted || as.Status == gatehouse.MenderPreauthorized {
				live++
			}
		}
		if live != 1 {
			t.add(0, max(live-1, 0), "mender device of %s has %d live auth sets", f.name[g.MAC], live)
		}
		if d := devices[g.MAC]; d != nil && stepOut(d, gatehouse.StepMender, gatehouse.OutMenderDeviceID) != mds[0].ID {
			t.add(1, 0, "%s's mender step recorded device %q, mender holds %q", d.Name, stepOut(d, gatehouse.StepMender, gatehouse.OutMenderDeviceID), mds[0].ID)
		}
	}
	for mac, mds := range held {
		t.add(0, len(mds), "mender holds %d devices for %s, no gateway of the fleet", len(mds), mac)
	}
}

func (f *fleet) countDPS(t *tally, byName map[string]*gatehouse.Device) {
	held := map[string]int{}
	for _, e := range f.b.DPS.State.Enrollments() {
		held[e.RegistrationID]++
	}
	for name, d := range byName {
		id := stepOut(d, gatehouse.StepDPS, gatehouse.OutDPSRegistrationID)
		switch n := held[id]; {
		case id == "" || n == 0:
			t.add(1, 0, "dps holds no enrollment for %s (registration id %q)", name, id)
		case n > 1:
			t.add(0, n-1, "dps holds %d enrollments for %s", n, name)
		}
		delete(held, id)
	}
	for id, n := range held {
		t.add(0, n, "dps holds an enrollment %s for no gateway of the fleet", id)
	}
}

func (f *fleet) countVault(t *tally, byName map[string]*gatehouse.Device) {
	held := map[string][]string{} // common name → live serials
	for _, c := range f.b.Vault.State.Live() {
		cn := commonName(c.CertificatePEM)
		held[cn] = append(held[cn], c.Serial)
	}
	for name, d := range byName {
		serials := held[name]
		delete(held, name)
		switch {
		case len(serials) == 0:
			t.add(1, 0, "vault holds no valid certificate for %s", name)
			continue
		case len(serials) > 1:
			t.add(0, len(serials)-1, "vault holds %d valid certificates for %s", len(serials), name)
		}
		if got := stepOut(d, gatehouse.StepVault, gatehouse.OutSerial); got != serials[0] {
			t.add(1, 0, "%s's vault step recorded serial %s, the valid one is %s", name, got, serials[0])
		}
	}
	for cn, serials := range held {
		t.add(0, len(serials), "vault holds %d valid certificates for %q, no gateway of the fleet", len(serials), cn)
	}
}

func (f *fleet) countHub(t *tally, byName map[string]*gatehouse.Device) {
	held := map[string]int{}
	hubs := f.b.Hub.State.Hubs()
	for _, h := range hubs {
		for _, d := range f.b.Hub.State.Devices(h) {
			held[d.DeviceID]++
		}
	}
	for name := range byName {
		switch n := held[name]; {
		case n == 0:
			t.add(1, 0, "no hub holds a device %s", name)
		case n > 1:
			t.add(0, n-1, "the hubs hold %d devices %s", n, name)
		}
		delete(held, name)
		configured := false
		for _, h := range hubs {
			if _, ok := f.b.Hub.State.Configuration(h, name); ok {
				configured = true
			}
		}
		if !configured {
			t.add(1, 0, "no hub holds %s's manifest", name)
		}
	}
	for id, n := range held {
		t.add(0, n, "the hubs hold a device %s for no gateway of the fleet", id)
	}
}

func stepOut(d *gatehouse.Device, step gatehouse.StepName, key string) string {
	for _, st := range d.Steps {
		if st.Name == step {
			return st.Output[key]
		}
	}
	return ""
}

func stepOf(d *gatehouse.Device, step gatehouse.StepName) *gatehouse.Step {
	for i := range d.Steps {
		if d.Steps[i].Name == step {
			return &d.Steps[i]
		}
	}
	return nil
}

func commonName(certPEM string) string {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return ""
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return c.Subject.CommonName
}
