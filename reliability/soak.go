package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"gatehouse"
	"gatehouse/client"
	"gatehouse/simulate"
)

func init() {
	register(Scenario{Name: "soak", Order: 90, Run: runSoak,
		About: "a steady mix of enrollments, waits, approvals and decommissions against one serve process, " +
			"its goroutines, memory, open files and database sampled each second: flat lines, every approved " +
			"gateway bundled, every decommissioned one gone from the backends"})
}

// soakPlan is one soak's length and pace.
type soakPlan struct {
	load       time.Duration // how long new gateways keep coming
	every      time.Duration // one new gateway this often
	waitMin    time.Duration // how long an operator lets a gateway wait before approving it:
	waitMax    time.Duration // long enough for its agent to poll a few times
	hold       time.Duration // how long a gateway to be decommissioned stays provisioned first
	printEvery int           // table rows: every n-th second
}

func planSoak(size Size) soakPlan {
	return soakPlan{load: size.PickDuration(60*time.Second, 10*time.Minute), every: soakEvery,
		waitMin: time.Second, waitMax: 20 * time.Second, hold: 2 * time.Second, printEvery: size.Pick(5, 10)}
}

// soakEvery is the pace of new gateways. gatehouse keeps to IoT Hub's S1
// identity registry quota of 100 calls a minute, and a gateway costs two
// to three (the name check at approval, its removal); one a second asked
// for more than that, the calls queued behind the quota and approvals
// waited past 30 s, so the mix stays under it.
const soakEvery = 2 * time.Second

// soakLongPoll is serve's --long-poll for the soak: short, so a waiting
// agent polls several times before its approval.
const soakLongPoll = "4s"

func runSoak(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	err := soak(ctx, h, planSoak(size), r)
	r.Took = time.Since(start)
	return r, err
}

func soak(ctx context.Context, h *Harness, p soakPlan, r *Result) error {
	b, err := h.StartBackends(50 * time.Millisecond)
	if err != nil {
		return err
	}
	defer b.Close()
	pprof, err := freeAddr()
	if err != nil {
		return err
	}
	srv, err := h.StartServer(ctx, ServerOptions{Config: b.EnvFile, Args: []string{"--long-poll", soakLongPoll},
		Env: []string{"GATEHOUSE_PPROF=" + pprof}})
	if err != nil {
		return err
	}
	defer srv.Stop()
	op, err := srv.OperatorClient(ctx, "soak")
	if err != nil {
		return err
	}
	n := int(p.load/p.every) + 1
	gws, err := h.NewGateways(n+1, 1)
	if err != nil {
		return err
	}
	// One gateway through the whole cycle first, so the baseline holds the
	// server's kept-alive connections to every backend and its lazily
	// started workers: what it holds idle after load, too.
	warm := &soakGateway{i: n, g: gws[n], name: "soak-warm", wait: 0, decommission: true}
	if err := warmUp(ctx, op, srv.URL, warm); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	ports := backendPorts(b)
	baseSample, base, err := sampleIdle(ctx, srv, ports)
	if err != nil {
		return err
	}
	sampler := StartSampler(ctx, srv, time.Second)
	run := newSoakRun(op, srv.URL, b.DPS.State, p, gws[:n])
	loadErr := run.drive(ctx)
	loadEnd := time.Since(run.start)
	started := run.gws[:run.started]
	if loadErr == nil {
		loadErr = waitRemoved(ctx, op, started)
	}
	after, settledIn, settleErr := settle(ctx, srv, ports, base)
	if settleErr != nil {
		settleErr = fmt.Errorf("%w; %s", settleErr, dumpGoroutines(ctx, pprof, filepath.Join(h.Dir, "goroutines-after-load.txt")))
	}
	samples, unanswered, sampleErr := sampler.Stop()
	_, slowest := Extremes(samples)
	r.Note("metrics scrapes unanswered in 10s %d/%d, slowest %v", unanswered, len(samples), slowest.Scrape.Round(time.Millisecond))
	// A scrape lost now and then on a loaded machine is noted; more than
	// one in a hundred means the server stalls.
	if unanswered*100 > len(samples) || len(samples) == 0 {
		return fmt.Errorf("sampling the server: %d of %d samples failed, the first: %w", unanswered, len(samples), sampleErr)
	}

	r.Operations = run.enrolled + run.approved + run.decommissioned + run.polls()
	r.Note("enrolled %d approved %d decommissioned %d polls %d", run.enrolled, run.approved, run.decommissioned, run.polls())
	r.Details = append(r.Details, fmt.Sprintf("soak: a gateway every %v for %v, approved %v–%v after it is pending, every other one decommissioned %v after its bundle; --long-poll %s; sampled each second, every %d-th shown:",
		p.every, p.load, p.waitMin, p.waitMax, p.hold, soakLongPoll, p.printEvery))
	r.Details = append(r.Details, SampleTable(samples, p.printEvery)...)
	flat, flatErr := checkFlat(samples, soakWarmUp(p.load), loadEnd)
	r.Details = append(r.Details, flat...)
	r.Details = append(r.Details, fmt.Sprintf("after the load, less connections to the backends (%d, baseline %d): goroutines %d (baseline %d), open files %d (baseline %d), back within %v",
		after.backendConns, base.backendConns, after.goroutines, base.goroutines, after.files, base.files, settledIn.Round(time.Second)))
	lo, hi := Extremes(samples)
	r.Note("goroutines %d–%d RSS %s–%s files %d–%d DB max %s", lo.Goroutines, hi.Goroutines, MiB(lo.RSS), MiB(hi.RSS), lo.FDs, hi.FDs, MiB(hi.DB))
	r.Note("idle after load (baseline) goroutines %d (%d) files %d (%d)", after.goroutines, base.goroutines, after.files, base.files)
	var backendErr error
	if loadErr == nil { // after a failed load the counts would only repeat it
		backendErr = checkBackends(b, append(started, warm), r)
	}
	return errors.Join(loadErr, settleErr, flatErr, backendErr, checkSoakRows(ctx, srv, baseSample, samples, r))
}

// soakGateway is one gateway's part in the soak.
type soakGateway struct {
	i            int
	g            *Gateway
	name         string
	wait         time.Duration // from pending to its approval
	decommission bool

	agent          *WatchedAgent
	id             string
	approved       bool
	bundledAt      time.Time
	decommissioned bool
	enrolled       bool
	registered     bool // its IoT Edge runtime registered with DPS
	err            error
}

// soakRun drives the mix: one loop starts agents, approves the pending
// gateways whose wait is over and decommissions the bundled ones whose
// hold is over, as one operator at a console would, one action at a time.
type soakRun struct {
	op    *client.Client
	url   string
	dps   *simulate.DPS
	p     soakPlan
	gws   []*soakGateway
	byMAC map[string]*soakGateway
	start time.Time

	started, enrolled, approved, decommissioned int
}

func newSoakRun(op *client.Client, url string, dps *simulate.DPS, p soakPlan, gws []*Gateway) *soakRun {
	run := &soakRun{op: op, url: url, dps: dps, p: p, byMAC: map[string]*soakGateway{}}
	for i, g := range gws {
		wait := p.waitMin + rand.N(p.waitMax-p.waitMin)
		sg := &soakGateway{i: i, g: g, name: fmt.Sprintf("soak-%d", i), wait: wait, decommission: i%2 == 1}
		run.gws = append(run.gws, sg)
		run.byMAC[g.MAC] = sg
	}
	return run
}

// drainFor bounds how long the gateways started last may take to finish
// once no new ones come.
const drainFor = 2 * time.Minute

// drive runs the mix for the load time and then until every gateway
// started is bundled and, if chosen, decommissioned.
func (run *soakRun) drive(ctx context.Context) error {
	run.start = time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	defer run.stopAgents()
	for {
		elapsed := time.Since(run.start)
		for run.started < len(run.gws) && elapsed >= time.Duration(run.started)*run.p.every && elapsed < run.p.load {
			sg := run.gws[run.started]
			sg.agent = StartAgent(ctx, sg.g, run.url, loopbackIP(10, sg.i))
			run.started++
		}
		if err := run.operate(ctx); err != nil {
			return err
		}
		if elapsed >= run.p.load && run.finished() {
			return nil
		}
		if elapsed >= run.p.load+drainFor {
			return fmt.Errorf("%s after %v without new gateways", run.unfinished(), drainFor)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// operate does what is due: approvals, bundles noted, decommissions.
func (run *soakRun) operate(ctx context.Context) error {
	if err := run.approveDue(ctx); err != nil {
		return err
	}
	for _, sg := range run.gws[:run.started] {
		if err := run.step(ctx, sg); err != nil {
			return err
		}
	}
	return nil
}

// approveDue approves each pending soak gateway whose wait is over.
func (run *soakRun) approveDue(ctx context.Context) error {
	due := false
	for _, sg := range run.gws[:run.started] {
		if in := sg.agent.PendingIn(); in > 0 && !sg.approved && time.Since(sg.agent.Started) >= in+sg.wait {
			due = true
		}
	}
	if !due {
		return nil
	}
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := run.op.ListDevices(callCtx, client.ListOptions{State: gatehouse.StatePending, Limit: 500})
	if err != nil {
		return fmt.Errorf("list pending: %w", err)
	}
	for _, d := range l.Devices {
		sg := run.byMAC[d.MAC]
		if sg == nil || sg.approved || sg.agent == nil {
			continue
		}
		if in := sg.agent.PendingIn(); in == 0 || time.Since(sg.agent.Started) < in+sg.wait {
			continue
		}
		if _, err := run.op.Approve(callCtx, d.ID, sg.name, nil); err != nil {
			return fmt.Errorf("approve %s: %w", sg.name, err)
		}
		sg.id, sg.approved = d.ID, true
		run.approved++
	}
	return nil
}

// step notes a gateway's enrollment and bundle and decommissions it when
// its hold is over.
func (run *soakRun) step(ctx context.Context, sg *soakGateway) error {
	select {
	case <-sg.agent.Done:
		if sg.bundledAt.IsZero() {
			sg.bundledAt, sg.err = time.Now(), sg.agent.Err()
		}
	default:
	}
	if sg.err == nil && !sg.bundledAt.IsZero() && !sg.registered {
		if err := run.registerEdge(ctx, sg); err != nil {
			return err
		}
	}
	if sg.decommission && !sg.decommissioned && sg.err == nil && !sg.bundledAt.IsZero() && time.Since(sg.bundledAt) >= run.p.hold {
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := run.op.Decommission(callCtx, sg.id, false); err != nil {
			return fmt.Errorf("decommission %s: %w", sg.name, err)
		}
		sg.decommissioned = true
		run.decommissioned++
	}
	if sg.agent.PendingIn() > 0 && !sg.enrolled {
		sg.enrolled = true
		run.enrolled++
	}
	return nil
}

// registerEdge does what the gateway's IoT Edge runtime does once it has
// its bundle: it registers with DPS under its name and key, and DPS assigns
// it to a hub, where it becomes a hub device.
func (run *soakRun) registerEdge(ctx context.Context, sg *soakGateway) error {
	e, err := run.dps.GetEnrollment(ctx, sg.name)
	if err != nil {
		return fmt.Errorf("%s registers with DPS: %w", sg.name, err)
	}
	if err := run.dps.Register(sg.name, e.PrimaryKey, ""); err != nil {
		return fmt.Errorf("%s registers with DPS: %w", sg.name, err)
	}
	sg.registered = true
	return nil
}

// finished reports whether every gateway started has finished its part.
func (run *soakRun) finished() bool { return run.unfinished() == "" }

// unfinished says which gateways have not, for an error.
func (run *soakRun) unfinished() string {
	var running, toRegister, toDecommission int
	for _, sg := range run.gws[:run.started] {
		select {
		case <-sg.agent.Done:
			// An agent that ended after this tick's step has not been seen
			// by it: its runtime has not registered with DPS, so its hub
			// device would be missing from the count at the end.
			if sg.err == nil && !sg.registered {
				toRegister++
			}
			if sg.decommission && !sg.decommissioned && sg.err == nil {
				toDecommission++
			}
		default:
			running++
		}
	}
	if running+toRegister+toDecommission == 0 {
		return ""
	}
	return fmt.Sprintf("%d agents still running, %d bundled gateways not yet registered with DPS, %d gateways not yet decommissioned",
		running, toRegister, toDecommission)
}

// stopAgents ends any agent still running (after an error) and waits.
func (run *soakRun) stopAgents() {
	for _, sg := range run.gws[:run.started] {
		select {
		case <-sg.agent.Done:
		default:
			sg.agent.Stop()
		}
	}
}

func (run *soakRun) polls() int {
	n := 0
	for _, sg := range run.gws[:run.started] {
		n += sg.agent.Polls()
	}
	return n
}
