package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/simulate"
)

func init() {
	register(Scenario{
		Name: "faults",
		About: "every backend fails 30 % of calls (429 with and without Retry-After, 500, 503, timeouts, dropped " +
			"connections, lost answers) while gateways are approved: all converge, one object each, calls bounded",
		Order: 30,
		Run:   runFaults,
	})
}

// shortFleet is the gateways of a short run: each costs two IoT Hub
// registry operations (the approval's name check, the manifest), which
// the client paces at the S1 quota of 100 a minute, so 30 take 36 s of
// it at least and 500 take 10 minutes.
const shortFleet = 30

// faultRate is the share of every backend's requests that fail.
const faultRate = 0.3

// faultWeights split the failures among the kinds. Timeouts are fewer:
// each holds a worker for the backend client's whole 30 s deadline
// (rest.Client's default Timeout), so they are also capped per backend.
var faultWeights = map[simulate.FaultKind]float64{
	simulate.Fault429RetryAfter: 2,
	simulate.Fault429:           2,
	simulate.Fault500:           2,
	simulate.Fault503:           2,
	simulate.FaultTimeout:       0.5,
	simulate.FaultDrop:          1.5,
	simulate.FaultLose:          1.5,
}

// isWrite says whether a request changes state, so that losing its answer
// tests that the step can repeat it; a lost GET is only a dropped one.
func isWrite(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != "LIST" }

func runFaults(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	defer func() { r.Took = time.Since(start) }()
	n := size.Pick(shortFleet, 500)
	f, err := startFleet(ctx, h, n, "flt", true)
	if err != nil {
		return r, err
	}
	defer f.Close()
	logs := recordCalls(f.b)
	mix := simulate.Mix{Rate: faultRate, Weights: faultWeights, RetryAfter: time.Second, Losable: isWrite,
		Max: map[simulate.FaultKind]int{simulate.FaultTimeout: size.Pick(1, 10)}}
	for _, name := range backendNames {
		f.b.server(name).Faults.SetMix(mix)
	}
	fmt.Fprintf(h.Progress, "reliability: faults: %d gateways pending, approving through %.0f %% faults\n", n, faultRate*100)

	approveStart := time.Now()
	if err := f.approveAll(ctx, 10, size.PickDuration(3*time.Minute, 20*time.Minute)); err != nil {
		return r, err
	}
	r.Note("approved in %v (the longest %v, %d requests)", time.Since(approveStart).Round(100*time.Millisecond),
		f.approveMax.Round(100*time.Millisecond), f.approvalRequests())
	if err := f.waitBundles(ctx, size.PickDuration(4*time.Minute, 15*time.Minute)); err != nil {
		return r, fmt.Errorf("%w\nserver log:\n%s", err, f.srv.LogTail(10))
	}
	bundled := time.Since(approveStart)
	listed, err := WaitDevices(ctx, f.op, gatehouse.StateConfigured, n, size.PickDuration(3*time.Minute, 15*time.Minute))
	if err != nil {
		return r, fmt.Errorf("after every bundle: %w", err)
	}
	converged := time.Since(approveStart)
	r.Note("bundles in %v", bundled.Round(100*time.Millisecond))
	r.Note("converged in %v", converged.Round(100*time.Millisecond))
	for _, name := range backendNames {
		f.b.server(name).Faults.SetMix(simulate.Mix{})
	}
	stopRecording(f.b)
	devices, err := f.details(ctx, listed)
	if err != nil {
		return r, err
	}

	r.Operations = n
	injected := faultsInjected(f.b)
	for _, k := range simulate.FaultKinds {
		r.Faults += injected[k]
	}
	r.Note("faults %s", describeFaults(injected))
	t := f.countObjects(devices)
	r.Losses, r.Duplicates = t.losses, t.dups
	notes, details, problems := f.callFigures(logs, devices, time.Since(approveStart))
	r.Notes = append(r.Notes, notes...)
	r.Details = append(r.Details, "faults: calls per backend, put down to the gateway each names:")
	r.Details = append(r.Details, details...)
	r.Details = append(r.Details, fmt.Sprintf("faults: bounds: %d requests a gateway per step attempt or approval (%d calls × %d tries); "+
		"%d attempts of a step, %d looks of the follow-up within %v (retry base %v, doubling)",
		restTries*callsPerAttempt, callsPerAttempt, restTries, attemptsWithin(converged), looksWithin(converged),
		converged.Round(time.Second), retryBase))
	return r, errors.Join(t.err(), listProblems("calls", problems))
}

// faultsInjected sums what the four simulators injected, by kind.
func faultsInjected(b *Backends) map[simulate.FaultKind]int {
	out := map[simulate.FaultKind]int{}
	for _, name := range backendNames {
		for k, v := range b.server(name).Faults.Injected() {
			out[k] += v
		}
	}
	return out
}

func describeFaults(in map[simulate.FaultKind]int) string {
	var parts []string
	for _, k := range simulate.FaultKinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, in[k]))
	}
	return strings.Join(parts, " ")
}

func listProblems(what string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	shown := problems[:min(len(problems), 5)]
	return fmt.Errorf("%d problems with %s, first: %s", len(problems), what, strings.Join(shown, "; "))
}
