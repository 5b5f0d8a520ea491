package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/simulate"
)

func init() {
	register(Scenario{
		Name: "outage",
		About: "one backend (vault; RELIABILITY_OUTAGE_BACKEND=iothub chooses the other) is down, refusing connections and then answering 503, " +
			"while a fleet is approved: the others finish, the down step waits with a visible reason, memory and queue stay " +
			"bounded, and all converge when it returns",
		Order: 40,
		Run:   runOutage,
	})
}

// outageSteps is the step that waits on each backend.
var outageSteps = map[string]gatehouse.StepName{
	"mender": gatehouse.StepMender, "dps": gatehouse.StepDPS, "vault": gatehouse.StepVault, "iothub": gatehouse.StepHub,
}

// Bounds on the server while a backend is down: the queue holds at most
// one job per step of each gateway (steps are unique jobs) and a few
// periodic ones; the process may grow by a fixed amount and a little per
// gateway.
const (
	queuePerGateway = 4
	queueSlack      = 20
	rssBaseMB       = 256
	rssPerGatewayKB = 512
)

func outageBackend() (string, error) {
	b := os.Getenv("RELIABILITY_OUTAGE_BACKEND")
	if b == "" {
		return "vault", nil
	}
	switch b {
	case "vault", "iothub":
		return b, nil
	case "mender", "dps":
		// Their steps start the moment an approval commits, and while
		// either is down approvals are refused (503): no step of theirs
		// can be caught waiting.
		return "", fmt.Errorf("RELIABILITY_OUTAGE_BACKEND=%s: every approval asks %s whether the name is free, so while it is down "+
			"approvals are refused with a 503 and no step waits on it; choose vault or iothub", b, b)
	}
	return "", fmt.Errorf("RELIABILITY_OUTAGE_BACKEND=%q: want vault or iothub", b)
}

// outage is one run of the scenario.
type outage struct {
	*fleet
	backend string
	step    gatehouse.StepName
	down    *simulate.Server
	r       *Result
	samples *sampler
	began   time.Time // the backend went down
	ended   time.Time // it came back
}

func runOutage(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	defer func() { r.Took = time.Since(start) }()
	backend, err := outageBackend()
	if err != nil {
		return r, err
	}
	// Fewer than the faults scenario's in a short run: the approvals'
	// IoT Hub name checks (100 a minute) set the outage's length.
	n := size.Pick(20, 500)
	// Debug logs: every backend request the server makes, refused ones
	// too, which no simulator sees.
	f, err := startFleet(ctx, h, n, "out", false, "--log-level", "debug")
	if err != nil {
		return r, err
	}
	defer f.Close()
	o := &outage{fleet: f, backend: backend, step: outageSteps[backend], down: f.b.server(backend), r: r,
		samples: startSampler(ctx, f.srv, "enrolled")}
	defer o.samples.finish()
	r.Operations = n
	err = o.run(ctx, size)
	samples := o.samples.finish()
	rss, jobs := peaks(samples)
	r.Note("max RSS %.0f MB", float64(rss)/1024)
	r.Note("max queue %d", jobs)
	r.Details = append(r.Details, fmt.Sprintf("outage: the server each second (%d samples):", len(samples)))
	r.Details = append(r.Details, sampleTable(samples, 12)...)
	return r, errors.Join(err, o.bounded(rss, jobs))
}

func (o *outage) run(ctx context.Context, size Size) error {
	hold := size.PickDuration(16*time.Second, 2*time.Minute)
	if o.backend == "iothub" {
		// Every try of a manifest waits its turn in the hub's quota (100 a
		// minute), refused ones too, so the first failures take a while.
		hold = size.PickDuration(80*time.Second, 5*time.Minute)
	}
	fmt.Fprintf(o.h.Progress, "reliability: outage: %d gateways pending; %s goes down through the approvals and %v after\n", len(o.gws), o.backend, hold)
	// An approval asks every backend but Vault whether the name is free,
	// and is refused while one cannot answer. The IoT Hub step waits for
	// IoT Edge to register, which the gateways do only once it is down.
	if !checksNames(o.backend) {
		o.goDown()
	}
	approveStart := time.Now()
	if err := o.approveAll(ctx, 10, size.PickDuration(3*time.Minute, 20*time.Minute)); err != nil {
		return err
	}
	o.r.Note("approved in %v", time.Since(approveStart).Round(100*time.Millisecond))
	if checksNames(o.backend) {
		o.goDown()
	}
	secrets, err := o.secrets()
	if err != nil {
		return err
	}
	// The first half refused, the second answering 503 to every call.
	half := time.Now().Add(hold / 2)
	if err := o.waitOthers(ctx, half); err != nil {
		return err
	}
	if err := o.watchReasons(ctx, half, "refused", "connection refused", secrets); err != nil {
		return err
	}
	o.samples.setPhase(o.backend + " 503")
	// The 503s first, so no call slips through as it listens again.
	o.down.Faults.SetMix(simulate.Mix{Rate: 1, Weights: map[simulate.FaultKind]float64{simulate.Fault503: 1}})
	if err := o.down.Up(); err != nil {
		return err
	}
	if err := o.watchReasons(ctx, half.Add(hold/2), "503", "503 Service Unavailable", secrets); err != nil {
		return err
	}
	o.down.Faults.SetMix(simulate.Mix{})
	o.ended = time.Now()
	o.samples.setPhase("returned")
	outageLen := o.ended.Sub(o.began)
	o.r.Note("%s down %v", o.backend, outageLen.Round(time.Second))
	if err := o.converge(ctx, outageLen); err != nil {
		return err
	}
	return o.count(ctx, outageLen)
}

// goDown closes the backend's listener: connections are refused.
func (o *outage) goDown() {
	o.down.Down()
	o.began = time.Now()
	o.samples.setPhase(o.backend + " refused")
}

// waitOthers waits until every gateway's other steps have succeeded, the
// down backend's step aside; they must before the outage's first half ends.
func (o *outage) waitOthers(ctx context.Context, by time.Time) error {
	others := slices.DeleteFunc([]gatehouse.StepName{gatehouse.StepMender, gatehouse.StepDPS, gatehouse.StepVault},
		func(s gatehouse.StepName) bool { return s == o.step })
	for {
		devices, err := o.readAll(ctx)
		if err != nil {
			return err
		}
		waiting := 0
		for _, d := range devices {
			for _, s := range others {
				if st := stepOf(d, s); st == nil || st.State != gatehouse.StepSucceeded {
					waiting++
				}
			}
		}
		if waiting == 0 {
			o.r.Note("others done %v into the outage", time.Since(o.began).Round(100*time.Millisecond))
			if o.backend == "iothub" {
				if err := o.registerAll(ctx, by); err != nil {
					return err
				}
			}
			return nil
		}
		if time.Now().After(by) {
			return fmt.Errorf("%d steps of backends that are up still unfinished %v into the %s outage", waiting, time.Since(o.began).Round(time.Second), o.backend)
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// registerAll waits for every bundle, due while the IoT Hub is down, and
// registers each gateway with DPS as IoT Edge would: its follow-up then
// finds it assigned and must wait to apply the manifest.
func (o *outage) registerAll(ctx context.Context, by time.Time) error {
	if err := o.waitBundles(ctx, time.Until(by)); err != nil {
		return fmt.Errorf("with only the IoT Hub down: %w", err)
	}
	for _, g := range o.gws {
		if err := o.registerEdge(g); err != nil {
			return fmt.Errorf("gateway %s: %w", o.name[g.MAC], err)
		}
	}
	return nil
}

// readAll reads every gateway of the fleet whole.
func (o *outage) readAll(ctx context.Context) (map[string]*gatehouse.Device, error) {
	listed, err := listDevices(ctx, o.op, "")
	if err != nil {
		return nil, err
	}
	return o.details(ctx, listed)
}

// watchReasons reads what the REST API shows of every gateway's waiting
// step, once a second until each shows the phase's cause or the phase
// ends, and checks the last look: no step done, every reason that gives
// the cause naming the backend, none carrying a credential, and at least
// one giving the cause (steps back off, so not all are retried in a
// phase). One reason goes to the details.
func (o *outage) watchReasons(ctx context.Context, until time.Time, phase, cause string, secrets []string) error {
	for {
		l, err := o.lookReasons(ctx, cause, secrets)
		if err != nil {
			return err
		}
		if l.current == len(o.gws) || !time.Now().Before(until) {
			o.r.Note("%s: %d/%d say %q", phase, l.current, len(o.gws), cause)
			o.r.Details = append(o.r.Details, fmt.Sprintf("outage: %s phase: %s", phase, l.shown))
			if l.current == 0 {
				l.problems = append(l.problems, fmt.Sprintf("no gateway's %s step shows %q (%s)", o.step, cause, l.other))
			}
			if err := listProblems(phase+" reasons", l.problems); err != nil {
				return err
			}
			return sleepCtx(ctx, time.Until(until))
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
}

// look is one reading of the waiting steps.
type look struct {
	current  int // steps whose reason gives the cause
	shown    string
	other    string // a reason that does not give the cause
	problems []string
}

func (o *outage) lookReasons(ctx context.Context, cause string, secrets []string) (*look, error) {
	devices, err := o.readAll(ctx)
	if err != nil {
		return nil, err
	}
	l := &look{}
	for _, d := range devices {
		st := stepOf(d, o.step)
		switch {
		case st == nil:
			l.problems = append(l.problems, fmt.Sprintf("%s has no %s step", d.Name, o.step))
			continue
		case st.State == gatehouse.StepSucceeded:
			l.problems = append(l.problems, fmt.Sprintf("%s's %s step succeeded while %s was down", d.Name, o.step, o.backend))
			continue
		}
		for _, s := range secrets {
			if strings.Contains(st.LastError+d.Reason, s) {
				l.problems = append(l.problems, fmt.Sprintf("%s's reason carries a credential of the serve config", d.Name))
			}
		}
		if !strings.Contains(st.LastError, cause) {
			if l.other == "" {
				l.other = fmt.Sprintf("%s's %s step (%s, %d attempts) shows %q", d.Name, o.step, st.State, st.Attempts, st.LastError)
			}
			continue // not retried since the phase began, or waiting on something else first
		}
		l.current++
		if !strings.Contains(st.LastError, o.backend) {
			l.problems = append(l.problems, fmt.Sprintf("%s's %s step shows %q, which does not name %s", d.Name, o.step, st.LastError, o.backend))
		}
		if l.shown == "" {
			l.shown = fmt.Sprintf("%s's %s step (%s, %d attempts): %s; device %s, reason %q",
				d.Name, o.step, st.State, st.Attempts, st.LastError, d.State, d.Reason)
		}
	}
	return l, nil
}

// convergeBound is how long the gateways may take once the backend is
// back: a failed step's next try comes at most twice the time it has
// been failing plus the retry base after its last failure, capped at
// serve's 5-minute RetryMax; then a minute for the work itself.
func convergeBound(outageLen time.Duration) time.Duration {
	return min(2*outageLen+retryBase, 5*time.Minute) + time.Minute
}

func (o *outage) converge(ctx context.Context, outageLen time.Duration) error {
	bound := convergeBound(outageLen)
	if err := o.waitBundles(ctx, bound); err != nil {
		return fmt.Errorf("after %s returned: %w\nserver log:\n%s", o.backend, err, o.srv.LogTail(10))
	}
	if o.backend == "iothub" {
		if _, err := WaitDevices(ctx, o.op, gatehouse.StateConfigured, len(o.gws), bound-time.Since(o.ended)); err != nil {
			return fmt.Errorf("after iothub returned: %w", err)
		}
	}
	o.r.Note("converged %v after return (bound %v)", time.Since(o.ended).Round(100*time.Millisecond), bound.Round(time.Second))
	return nil
}

// count checks one object per gateway in each backend that provisioned
// it, and the calls the server made to the down backend while it was down.
func (o *outage) count(ctx context.Context, outageLen time.Duration) error {
	devices, err := o.readAll(ctx)
	if err != nil {
		return err
	}
	t := &tally{}
	byName := map[string]*gatehouse.Device{}
	for _, d := range devices {
		byName[d.Name] = d
	}
	o.countMender(t, devices)
	o.countDPS(t, byName)
	o.countVault(t, byName)
	if o.backend == "iothub" {
		o.countHub(t, byName)
	}
	o.r.Losses, o.r.Duplicates = t.losses, t.dups
	calls, refused, err := o.callsWhileDown()
	if err != nil {
		return err
	}
	o.r.Faults = refused + o.down.Faults.Injected()[simulate.Fault503]
	o.r.Note("faults %d refused, %d answered 503", refused, o.down.Faults.Injected()[simulate.Fault503])
	perGW := float64(calls) / float64(len(o.gws))
	bound := attemptsWithin(outageLen) * restTries * callsPerAttempt
	o.r.Note("%s calls while down %.1f/gw (bound %d)", o.backend, perGW, bound)
	var problems []string
	if calls > bound*len(o.gws) {
		problems = append(problems, fmt.Sprintf("the server called %s %d times while it was down, over %d a gateway", o.backend, calls, bound))
	}
	return errors.Join(t.err(), listProblems("calls", problems))
}

// callsWhileDown counts the server's debug lines for requests to the down
// backend between its going down and its return, and of those the ones
// that found no listener (status 0).
func (o *outage) callsWhileDown() (calls, refused int, err error) {
	f, err := os.Open(o.srv.Log)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	want := `msg="backend request" service=` + o.backend + " "
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, want) {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || at.Before(o.began) || !at.Before(o.ended) {
			continue
		}
		calls++
		if strings.Contains(line, " status=0 ") {
			refused++
		}
	}
	return calls, refused, sc.Err()
}

// bounded checks the peaks against the bounds above.
func (o *outage) bounded(rssKB, jobs int) error {
	var problems []string
	if maxRSS := rssBaseMB*1024 + rssPerGatewayKB*len(o.gws); rssKB > maxRSS {
		problems = append(problems, fmt.Sprintf("RSS reached %d MB, over %d MB", rssKB/1024, maxRSS/1024))
	}
	if maxJobs := queuePerGateway*len(o.gws) + queueSlack; jobs > maxJobs {
		problems = append(problems, fmt.Sprintf("the job queue reached %d, over %d", jobs, maxJobs))
	}
	return listProblems("the server's size", problems)
}
