package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/internal/pgtest"
	"gatehouse/provision"
	"gatehouse/simulate"
)

func init() {
	register(Scenario{
		Name:  "crash",
		About: "provisions while gatehouse serve is SIGKILLed at random and restarted on its database: nothing lost or doubled in bundles, backends or the audit log",
		Order: 10,
		Run: func(ctx context.Context, h *Harness, size Size) (*Result, error) {
			return runCrash(ctx, h, size, "")
		},
	})
	register(Scenario{
		Name:  "crash-pg",
		About: "crash on PostgreSQL, in a schema of its own (needs " + pgtest.Env + "; skipped without it)",
		Order: 11,
		Run:   runCrashPG,
	})
}

// crashSize is how big a crash run is.
type crashSize struct {
	gateways int
	kills    int // at least this many, besides the approval hook's
	// edge: each provisioned gateway registers with DPS as IoT Edge would,
	// and the run waits for the IoT Hub follow-up to configure it. The
	// hub's identity quota (100 calls a minute, which each approval's name
	// check also draws on) makes that minutes, so a short run leaves it out.
	edge bool
	// afterCommit is the fraction of approvals after whose commit serve
	// kills itself before answering (killAfterApproveEnv): the operator
	// gets no answer to an approval that took.
	afterCommit float64
	// jobTimeout and rescueAfter are serve's --job-timeout and
	// --rescue-after on PostgreSQL, where a step a kill left running waits
	// for the rescue (SQLite requeues it at start); zero keeps serve's
	// defaults.
	jobTimeout, rescueAfter time.Duration
}

// Short PostgreSQL runs rescue steps left running after 20 s, not serve's
// 5 min, so that CI waits well under two minutes instead of five and a
// half. That is safe because no step in a short run comes near the 15 s
// timeout the rescue must exceed: the simulators answer in milliseconds,
// the hub runs at an S3 pace and the DPS quota (1,000 a minute) is far
// above 60 gateways' calls, so a step still running at 15 s is a bug the
// run should see, not a slow backend. The rescue is River's own, run as in
// production, only sooner: a kill's orphans are taken up between 20 s and
// 20 s plus River's 30 s rescuer interval after their attempt began.
const (
	shortPGJobTimeout  = 15 * time.Second
	shortPGRescueAfter = 20 * time.Second
)

func crashSizeOf(s Size) crashSize {
	// A short run's fraction is higher so that its 58 approvals all but
	// surely see a few such kills; a full run's still makes dozens.
	afterCommit := 0.05
	if s.Short {
		afterCommit = 0.1
	}
	c := crashSize{gateways: s.Pick(60, 1000), kills: s.Pick(6, 25), edge: !s.Short, afterCommit: afterCommit}
	// A full run keeps serve's defaults: it waits on the hub's S1 quota,
	// where a step can take far longer than in a short run, and it then
	// measures the rescue as deployed.
	if s.Short {
		c.jobTimeout, c.rescueAfter = shortPGJobTimeout, shortPGRescueAfter
	}
	return c
}

// killAfterApproveEnv switches on serve's test hook that SIGKILLs it after
// an approval's commit, before the answer (cmd/gatehouse/killhook.go), and
// killAfterApproveLine starts the line it writes to stderr first, naming
// the device.
const (
	killAfterApproveEnv  = "GATEHOUSE_TEST_KILL_AFTER_APPROVE"
	killAfterApproveLine = "gatehouse: " + killAfterApproveEnv + ": test hook: SIGKILL after the approval commit of "
)

// dismissEvery: one gateway in this many is dismissed, not approved.
const dismissEvery = 25

// crashRun is one run of the crash scenario.
type crashRun struct {
	h    *Harness
	size crashSize
	b    *Backends
	srv  *Server
	op   *operator
	kill *killer
	rng  *lockedRand
	seed uint64
	db   string // the server's database: a postgres:// URL, or empty for SQLite
	// stopWatch ends the restarts after the server's own deaths and
	// returns what went wrong with them.
	stopWatch func() error

	gws       []*Gateway
	menders   map[string]*simulate.MenderClient // by MAC
	decisions []*decision
	agents    chan agentDone
}

type agentDone struct {
	gw  *Gateway
	err error
	at  time.Time
}

// runCrash runs the scenario on db, a postgres:// URL, or on a SQLite file
// in the scratch directory when db is empty.
func runCrash(ctx context.Context, h *Harness, size Size, db string) (*Result, error) {
	start := time.Now()
	r := &Result{}
	run, err := newCrashRun(ctx, h, crashSizeOf(size), db)
	if run != nil {
		defer run.close()
	}
	if err == nil {
		err = run.run(ctx, r)
	}
	r.Took = time.Since(start)
	return r, err
}

// runCrashPG is the crash scenario on PostgreSQL, in a schema made for the
// run and dropped after it, as the store's tests isolate themselves.
func runCrashPG(ctx context.Context, h *Harness, size Size) (*Result, error) {
	base := os.Getenv(pgtest.Env)
	if base == "" {
		return &Result{Skipped: pgtest.Env + " is not set: set it to a PostgreSQL URL (postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run crash on PostgreSQL"}, nil
	}
	dsn, drop, err := pgtest.NewSchema(ctx, base)
	if err != nil {
		return nil, err
	}
	r, err := runCrash(ctx, h, size, dsn)
	// Dropped even when the run was interrupted: a fresh context, since
	// ctx may be the one that ended.
	dropCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if dropErr := drop(dropCtx); dropErr != nil {
		err = errors.Join(err, fmt.Errorf("drop the run's schema: %w", dropErr))
	}
	return r, err
}

func newCrashRun(ctx context.Context, h *Harness, size crashSize, db string) (*crashRun, error) {
	seed := uint64(time.Now().UnixNano())
	run := &crashRun{h: h, size: size, db: db, seed: seed, rng: newLockedRand(seed), agents: make(chan agentDone, size.gateways)}
	var err error
	if run.b, err = h.StartBackends(50 * time.Millisecond); err != nil {
		return nil, err
	}
	// Every simulated gateway comes from 127.0.0.1, so the per-source
	// limit is off, as behind a proxy; the flood scenario covers it.
	opts := ServerOptions{DB: db, Config: run.b.EnvFile, Args: []string{"--device-rate", "0"},
		Env: []string{fmt.Sprintf("%s=%g", killAfterApproveEnv, size.afterCommit)}}
	if run.postgres() && size.rescueAfter > 0 {
		opts.Env = append(opts.Env, "GATEHOUSE_JOB_TIMEOUT="+size.jobTimeout.String(), "GATEHOUSE_RESCUE_AFTER="+size.rescueAfter.String())
	}
	run.srv, err = h.StartServer(ctx, opts)
	if err != nil {
		return run, err
	}
	run.kill = newKiller(run.srv, run.b, run.rng)
	// From here the server may die on its own, after an approval commits;
	// the killer starts it again.
	run.stopWatch = run.kill.watchOwnExits(ctx)
	if run.op, err = newOperator(ctx, h, run.srv, "crash-operator", "operator"); err != nil {
		return run, err
	}
	run.gws, err = h.NewGateways(size.gateways, 1)
	return run, err
}

func (c *crashRun) close() {
	if c.stopWatch != nil {
		c.stopWatch()
	}
	if c.srv != nil {
		c.srv.Kill()
	}
	if c.b != nil {
		c.b.Close()
	}
}

func (c *crashRun) run(ctx context.Context, r *Result) error {
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	var err error
	if c.menders, err = startMenderClients(agentCtx, c.b, c.gws); err != nil {
		return err
	}
	c.startAgents(agentCtx)
	if err := c.waitPending(ctx); err != nil {
		return err
	}
	slowest, err := c.decideAndWait(ctx)
	// Every approval has ended, so the server no longer dies on its own.
	// A death the hook did not cause may be why the decisions failed, so
	// the watch's errors come with theirs.
	err = errors.Join(err, c.stopWatch())
	c.stopWatch = nil
	if err != nil {
		return err
	}
	hook, err := c.kill.hookKills()
	if err != nil {
		return err
	}
	c.note(r, slowest, hook)
	return errors.Join(c.count(ctx, r), c.checkHookKills(hook))
}

// decideAndWait makes every decision under kills, then waits for the
// agents; it returns the slowest agent's time after the last round.
func (c *crashRun) decideAndWait(ctx context.Context) (time.Duration, error) {
	if err := c.decideUnderKills(ctx); err != nil {
		return 0, err
	}
	return c.awaitAgents(ctx)
}

// startMenderClients starts each gateway's Mender client, which asks
// Mender for a token from boot on, as the real one does: most devices are
// pending in Mender before gatehouse preauthorizes them, and each gets its
// token once gatehouse has accepted its key. The retry interval keeps a
// thousand clients to a few hundred requests a second.
func startMenderClients(ctx context.Context, b *Backends, gws []*Gateway) (map[string]*simulate.MenderClient, error) {
	out := map[string]*simulate.MenderClient{}
	retry := time.Duration(max(1, len(gws)/300)) * time.Second
	for _, g := range gws {
		mc, err := b.MenderClient(g.Key, g.MAC, retry)
		if err != nil {
			return nil, err
		}
		out[g.MAC] = mc
		go mc.Run(ctx)
	}
	return out, nil
}

// startAgents runs every gateway's agent in this process; each reports
// when it returns.
func (c *crashRun) startAgents(ctx context.Context) {
	for _, g := range c.gws {
		go func() {
			_, err := g.RunAgent(ctx, c.srv.URL)
			c.agents <- agentDone{gw: g, err: err, at: time.Now()}
		}()
	}
}

// waitPending waits until every gateway is pending and plans a decision
// for each.
func (c *crashRun) waitPending(ctx context.Context) error {
	pending, err := WaitDevices(ctx, c.op.c, gatehouse.StatePending, len(c.gws), 2*time.Minute)
	if err != nil {
		return err
	}
	for i, g := range c.gws {
		d, ok := pending[g.MAC]
		if !ok {
			return fmt.Errorf("gateway %s is not pending", g.MAC)
		}
		dec := &decision{gw: g, deviceID: d.ID, dismiss: i%dismissEvery == dismissEvery/3}
		if !dec.dismiss {
			dec.name = fmt.Sprintf("gw-crash-%04d", i)
		}
		c.decisions = append(c.decisions, dec)
	}
	return nil
}

// decideUnderKills decides the gateways in rounds, one kill in each: a
// round's approvals start, a kill lands among them or in the backend
// calls they cause, the server comes back, the operator finishes the
// round (retrying what the kill cut off), and the next round begins while
// the last one's provisioning is still running.
func (c *crashRun) decideUnderKills(ctx context.Context) error {
	rounds := c.size.kills
	per := (len(c.decisions) + rounds - 1) / rounds
	for i := 0; i < len(c.decisions); i += per {
		batch := c.decisions[i:min(i+per, len(c.decisions))]
		if err := c.round(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// round decides batch while one kill happens.
func (c *crashRun) round(ctx context.Context, batch []*decision) error {
	decided := make(chan error, 1)
	go func() { decided <- c.decideAll(ctx, batch) }()
	// Each provision makes several backend calls; a trigger within the
	// first few per gateway lands while this round's work runs.
	t := c.kill.trigger(3*len(batch), 500*time.Millisecond)
	killErr := c.kill.killAndRestart(ctx, t)
	return errors.Join(killErr, <-decided)
}

// decideAll makes the decisions a few at a time, as a handful of operators
// would.
func (c *crashRun) decideAll(ctx context.Context, ds []*decision) error {
	const operators = 4
	sem := make(chan struct{}, operators)
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i, d := range ds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = c.op.decide(ctx, d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// awaitAgents waits for every agent: an approved gateway's must end with
// its bundle, a dismissed one's with the dismissal. It returns the slowest
// time from the last kill to an agent's end.
func (c *crashRun) awaitAgents(ctx context.Context) (time.Duration, error) {
	last := time.Now()
	deadline := time.NewTimer(c.agentWait())
	defer deadline.Stop()
	byMAC := map[string]*decision{}
	for _, d := range c.decisions {
		byMAC[d.gw.MAC] = d
	}
	var slowest time.Duration
	var errs []error
	for range c.gws {
		select {
		case a := <-c.agents:
			slowest = max(slowest, a.at.Sub(last))
			errs = append(errs, c.agentOutcome(byMAC[a.gw.MAC], a.err))
		case <-deadline.C:
			return slowest, fmt.Errorf("agents still waiting %v after the last kill; server log:\n%s", c.agentWait(), c.srv.LogTail(20))
		case <-ctx.Done():
			return slowest, ctx.Err()
		}
	}
	return slowest, errors.Join(errs...)
}

func (c *crashRun) agentWait() time.Duration {
	return 10 * time.Minute
}

// agentOutcome checks how an agent ended against the decision; an approved
// gateway then registers with DPS, as its IoT Edge would.
func (c *crashRun) agentOutcome(d *decision, err error) error {
	if d.dismiss {
		if agent.ExitCode(err) != agent.ExitDismissed {
			return fmt.Errorf("agent of dismissed %s ended with %v, want the dismissal", d.gw.MAC, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent of %s (%s): %w", d.name, d.gw.MAC, err)
	}
	if !c.size.edge {
		return nil
	}
	return registerEdge(c.b, d.gw)
}

func (c *crashRun) note(r *Result, slowest time.Duration, hook hookKills) {
	k := c.kill
	// Each death was followed by one restart, whoever caused it.
	r.Faults = c.srv.Starts() - 1
	r.Note("harness kills %d", k.kills)
	r.Note("kills after approval commit %d", hook.processes)
	r.Note("kills in backend calls %d", k.inBackend)
	if k.fallbacks > 0 {
		r.Note("kills past their trigger %d", k.fallbacks)
	}
	r.Note("max recovery %v", k.maxRecovery.Round(time.Millisecond))
	r.Note("approvals retried %d", c.op.retried.Load())
	r.Note("lost answers found done %d", c.op.checked.Load())
	r.Note("answered busy %d", c.op.busy.Load())
	r.Note("last agent done %v after the last kill", slowest.Round(100*time.Millisecond))
	r.Note("database %s", c.dbKind())
	r.Note("rescue %s", c.rescueNote())
	r.Note("seed %d", c.seed)
}

func (c *crashRun) dbKind() string {
	if c.postgres() {
		return "postgres"
	}
	return "sqlite"
}

// postgres says whether the run is on PostgreSQL, as the server's database
// (set when the run is made) says.
func (c *crashRun) postgres() bool { return strings.HasPrefix(c.db, "postgres") }

// rescueNote says when the steps a kill left running were taken up again,
// so that a reader knows what "last agent done" waited for.
func (c *crashRun) rescueNote() string {
	switch {
	case !c.postgres():
		return "at each start (sqlite)"
	case c.size.rescueAfter > 0:
		return fmt.Sprintf("after %v, job timeout %v", c.size.rescueAfter, c.size.jobTimeout)
	}
	return "after serve's default " + provision.DefaultRescueAfter.String()
}

// checkHookKills holds each approval the hook cut off after its commit to
// what the operator must have seen: no answer, and a look that found it
// done, so it was not asked again (the audit count proves it was made
// once). An approval the scenario did not make, cut off, is an error too.
func (c *crashRun) checkHookKills(hook hookKills) error {
	byID := map[string]*decision{}
	for _, d := range c.decisions {
		byID[d.deviceID] = d
	}
	var errs []error
	for _, id := range hook.devices {
		switch d := byID[id]; {
		case d == nil || d.dismiss:
			errs = append(errs, fmt.Errorf("the hook cut off an approval of %s, which the scenario did not approve", id))
		case !d.byCheck:
			errs = append(errs, fmt.Errorf("the hook killed serve after approving %s (%s), yet the operator did not find it done by looking", d.name, id))
		}
	}
	return errors.Join(errs...)
}

// count waits until every approved gateway is configured, then checks the
// bundles, the server's states, the backends and the audit log.
func (c *crashRun) count(ctx context.Context, r *Result) error {
	w := wantOf(c.decisions)
	r.Note("dismissed %d", len(w.dismissed))
	return fleetEnd{h: c.h, srv: c.srv, op: c.op, b: c.b, menders: c.menders, decisions: c.decisions,
		edge: c.size.edge, auditor: "crash-auditor"}.check(ctx, r)
}

// fleetEnd is what the kill scenarios check at the end: every approved
// gateway's files, the server's states, one object per gateway in each
// backend, and the audit log.
type fleetEnd struct {
	h         *Harness
	srv       *Server
	op        *operator
	b         *Backends
	menders   map[string]*simulate.MenderClient
	decisions []*decision
	edge      bool   // wait for the IoT Hub follow-up and count hub devices
	strict    bool   // the agent was killed too: its files get the stricter check
	auditor   string // the admin token's name for reading the audit log
}

func (f fleetEnd) check(ctx context.Context, r *Result) error {
	w := wantOf(f.decisions)
	if f.edge {
		if _, err := WaitDevices(ctx, f.op.c, gatehouse.StateConfigured, len(w.approved), 30*time.Minute); err != nil {
			return fmt.Errorf("iot hub follow-up: %w", err)
		}
	}
	admin, err := newOperator(ctx, f.h, f.srv, f.auditor, "admin")
	if err != nil {
		return err
	}
	t := &tally{}
	r.Operations = len(w.approved)
	countMenderTokens(ctx, f.menders, w, t)
	tr := truthOf(f.b, t)
	for mac, name := range w.approved {
		checkFiles(w.gws[mac], name, tr, f.strict, t)
	}
	err = errors.Join(countServer(ctx, f.op.c, w, t), countAudit(ctx, admin.c, f.decisions, t))
	countBackends(f.b, w, f.edge, t)
	t.apply(r)
	return err
}

// countMenderTokens waits a little for each approved gateway's Mender
// client to get its token: gatehouse accepted the key it asks with.
func countMenderTokens(ctx context.Context, menders map[string]*simulate.MenderClient, w fleetWant, t *tally) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for mac, name := range w.approved {
		select {
		case <-menders[mac].Accepted():
		case <-ctx.Done():
			t.lost("the mender client of %s got no token", name)
		}
	}
}
