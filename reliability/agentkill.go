package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"gatehouse/simulate"
)

func init() {
	register(Scenario{
		Name:  "agentkill",
		About: "the real gatehouse-agent SIGKILLed while it writes its files, then run again: every gateway ends with complete, consistent files, provisioned once",
		Order: 20,
		Run:   runAgentKill,
	})
}

// agentKillSize is how big an agentkill run is.
type agentKillSize struct {
	gateways int
	kills    int  // at least this many must land
	parallel int  // agents running at once
	edge     bool // register with DPS and wait for the IoT Hub follow-up (see crashSize)
}

func agentKillSizeOf(s Size) agentKillSize {
	return agentKillSize{gateways: s.Pick(20, 200), kills: s.Pick(10, 100), parallel: s.Pick(10, 16), edge: !s.Short}
}

// Kill pacing: each run of an agent is killed with killChance while it
// writes, at most maxKills times a gateway, until the gateway's share of
// the kills is reached.
const (
	killChance = 0.8
	maxKills   = 4
)

type agentKillRun struct {
	h    *Harness
	size agentKillSize
	b    *Backends
	srv  *Server
	op   *operator
	rng  *lockedRand
	seed uint64

	gws     []*Gateway
	menders map[string]*simulate.MenderClient

	mu        sync.Mutex
	decisions []*decision
	runs      int
	kills     int             // SIGKILLs that found the agent at work
	missed    int             // SIGKILLs that came after it had exited
	phases    map[string]int  // where the kills landed
	writes    []time.Duration // recent writes, from bundle to files written
	mostKills int
}

func runAgentKill(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	run, err := newAgentKillRun(ctx, h, agentKillSizeOf(size))
	if run != nil {
		defer run.close()
	}
	if err == nil {
		err = run.run(ctx, r)
	}
	r.Took = time.Since(start)
	return r, err
}

func newAgentKillRun(ctx context.Context, h *Harness, size agentKillSize) (*agentKillRun, error) {
	seed := uint64(time.Now().UnixNano())
	run := &agentKillRun{h: h, size: size, seed: seed, rng: newLockedRand(seed), phases: map[string]int{}}
	var err error
	if run.b, err = h.StartBackends(50 * time.Millisecond); err != nil {
		return nil, err
	}
	run.srv, err = h.StartServer(ctx, ServerOptions{Config: run.b.EnvFile, Args: []string{"--device-rate", "0"}})
	if err != nil {
		return run, err
	}
	if run.op, err = newOperator(ctx, h, run.srv, "agentkill-operator", "operator"); err != nil {
		return run, err
	}
	run.gws, err = h.NewGateways(size.gateways, 2)
	return run, err
}

func (a *agentKillRun) close() {
	if a.srv != nil {
		a.srv.Kill()
	}
	if a.b != nil {
		a.b.Close()
	}
}

func (a *agentKillRun) run(ctx context.Context, r *Result) error {
	clientCtx, stop := context.WithCancel(ctx)
	defer stop()
	var err error
	if a.menders, err = startMenderClients(clientCtx, a.b, a.gws); err != nil {
		return err
	}
	if err := a.provisionAll(ctx); err != nil {
		return err
	}
	a.note(r)
	if a.kills < a.size.kills {
		return fmt.Errorf("%d kills landed, fewer than the %d the run must make", a.kills, a.size.kills)
	}
	return a.count(ctx, r)
}

// provisionAll runs the gateways' agents a few at a time, each to the end.
func (a *agentKillRun) provisionAll(ctx context.Context) error {
	sem := make(chan struct{}, a.size.parallel)
	var wg sync.WaitGroup
	errs := make([]error, len(a.gws))
	share := (a.size.kills + len(a.gws) - 1) / len(a.gws)
	for i, g := range a.gws {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = a.provision(ctx, g, fmt.Sprintf("gw-akill-%03d", i), share)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// agentDeadline bounds one gateway's whole life, kills and reruns included.
const agentDeadline = 5 * time.Minute

// provision runs g's agent until it exits 0, killing it while it writes its
// files at random, at least share times when the dice allow, and running it
// again each time, as systemd would.
func (a *agentKillRun) provision(ctx context.Context, g *Gateway, name string, share int) error {
	ctx, cancel := context.WithTimeout(ctx, agentDeadline)
	defer cancel()
	d := &decision{gw: g, name: name}
	approved := make(chan error, 1)
	var once sync.Once
	kills := 0
	for {
		kill := kills < maxKills && (kills < share || a.rng.Float64() < killChance)
		killed, err := a.runOnce(ctx, g, kill, func(deviceID string) {
			once.Do(func() {
				d.deviceID = deviceID
				go func() { approved <- a.op.decide(ctx, d) }()
			})
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !killed {
			break
		}
		kills++
	}
	if d.deviceID == "" {
		return fmt.Errorf("%s: the agent never said it was pending", name)
	}
	if err := <-approved; err != nil {
		return err
	}
	a.done(d, kills)
	if a.size.edge {
		return registerEdge(a.b, g)
	}
	return nil
}

func (a *agentKillRun) done(d *decision, kills int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decisions = append(a.decisions, d)
	a.mostKills = max(a.mostKills, kills)
}

// runOnce runs the agent once; pending is told its device id when it says
// it is pending. With kill, a SIGKILL follows the bundle's arrival after a
// random delay drawn from the writes seen so far, so that it lands before,
// among or after the files being written. It reports whether the agent
// died of it.
func (a *agentKillRun) runOnce(ctx context.Context, g *Gateway, kill bool, pending func(string)) (bool, error) {
	run, err := startAgent(ctx, a.h.AgentBin, a.srv.URL, g)
	if err != nil {
		return false, err
	}
	a.mu.Lock()
	a.runs++
	a.mu.Unlock()
	// The whole log is read before Wait, which closes the pipe.
	run.watch(func(l agentLine) {
		switch {
		case l.deviceID != "":
			pending(l.deviceID)
		case l.received && kill:
			a.killLater(run)
		case l.wrote:
			a.sawWrite(run)
		}
	})
	killed, err := run.wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case killed:
		a.kills++
		a.phases[killPhase(g)]++
	case kill:
		a.missed++
	}
	return killed, err
}

// writesKept is how many recent writes the kill delay is drawn from.
const writesKept = 64

// killLater kills run after a delay drawn from the writes seen: one of
// them picked at random, scaled by a random factor in [0, 1.25], so most
// kills land while the files are written and a few just after.
func (a *agentKillRun) killLater(run *agentRun) {
	a.mu.Lock()
	typical := 20 * time.Millisecond // until a write has been seen
	if len(a.writes) > 0 {
		typical = a.writes[a.rng.IntN(len(a.writes))]
	}
	a.mu.Unlock()
	delay := time.Duration(a.rng.Float64() * 1.25 * float64(typical))
	time.AfterFunc(delay, func() { run.kill() })
}

// sawWrite keeps how long a write took.
func (a *agentKillRun) sawWrite(run *agentRun) {
	run.mu.Lock()
	took := time.Since(run.received)
	run.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.writes = append(a.writes, took)
	if len(a.writes) > writesKept {
		a.writes = a.writes[1:]
	}
}

func (a *agentKillRun) note(r *Result) {
	r.Faults = a.kills
	r.Note("agent runs %d", a.runs)
	var phases []string
	for p, n := range a.phases {
		phases = append(phases, fmt.Sprintf("%s %d", p, n))
	}
	sort.Strings(phases)
	r.Note("kills %s", strings.Join(phases, " / "))
	r.Note("kills planned that came too late %d", a.missed)
	r.Note("most kills of one gateway %d", a.mostKills)
	r.Note("typical write %v", a.typicalWrite().Round(time.Millisecond))
	r.Note("approvals answered busy %d", a.op.busy.Load())
	r.Note("seed %d", a.seed)
}

// count checks every gateway's files, the server's states, the backends
// and the audit log.
func (a *agentKillRun) count(ctx context.Context, r *Result) error {
	return fleetEnd{h: a.h, srv: a.srv, op: a.op, b: a.b, menders: a.menders, decisions: a.decisions,
		edge: a.size.edge, strict: true, auditor: "agentkill-auditor"}.check(ctx, r)
}

// typicalWrite is the median of the recent writes.
func (a *agentKillRun) typicalWrite() time.Duration {
	w := slices.Clone(a.writes)
	if len(w) == 0 {
		return 0
	}
	slices.Sort(w)
	return w[len(w)/2]
}
