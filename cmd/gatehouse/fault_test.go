package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/provision"
	"gatehouse/sandbox"
)

// TestConvergesDespiteFailingBackends approves 100 gateways while every
// simulated backend fails 30 % of calls with 429 or 500. Every gateway must
// end provisioned, with exactly one Mender device, one DPS enrollment and
// one certificate each.
func TestConvergesDespiteFailingBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 100-gateway fault test in -short mode")
	}
	const n = 100
	// No deadline over the whole test: each phase below has its own.
	ctx := context.Background()
	sims, err := sandbox.Start(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	cfg := sims.Config()
	cfg.DPS.RateLimit, cfg.Hubs.RateLimit = 1_000_000, 1_000_000 // quotas are not under test here
	clients, err := cfg.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// 100 gateways on one loopback address: no per-address limit.
	a, err := startApp(ctx, appConfig{Listen: "127.0.0.1:0", DB: filepath.Join(dir, "g.db"), Backends: clients.Backends,
		Jobs: provision.Config{RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond}, DeviceRate: rate.Inf})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents() // before the app closes, so their long polls end
	var agents sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		keyPath := filepath.Join(dir, fmt.Sprintf("k%d.pem", i))
		writeEd25519Key(t, keyPath)
		agents.Go(func() {
			_, err := agent.Run(agentCtx, agent.Config{Server: a.server.URL(), InsecureHTTP: true, KeyPath: keyPath, OutDir: filepath.Join(dir, fmt.Sprint(i)),
				MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff), RestartCommands: []string{},
				BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Logger: quiet})
			errs <- err
		})
	}
	ids := waitForN(t, a.svc, n)
	for _, s := range []interface{ SetFailRate(float64, ...int) }{sims.Mender.Faults, sims.DPS.Faults, sims.Hub.Faults, sims.Vault.Faults} {
		s.SetFailRate(0.3, 429, 500)
	}
	// Ten operators at once, so the test is about convergence, not queueing.
	var approvals sync.WaitGroup
	sem := make(chan struct{}, 10)
	for i, id := range ids {
		sem <- struct{}{}
		approvals.Go(func() {
			defer func() { <-sem }()
			approveRetrying(t, a.svc, id, fmt.Sprintf("gw-%03d", i))
		})
	}
	approvals.Wait()
	// Every agent ends once its gateway is provisioned and it holds the bundle.
	converged := make(chan struct{})
	go func() {
		agents.Wait()
		close(converged)
	}()
	select {
	case <-converged:
	case <-time.After(convergeTimeout):
		stopAgents()
		<-converged
		l, _ := a.svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StateProvisioned, Limit: n})
		t.Fatalf("%d of %d gateways provisioned %v after the last approval", l.Total, n, convergeTimeout)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("agent: %v", err)
		}
	}
	if m, d, v := sims.Mender.State.Len(), sims.DPS.State.Len(), sims.Vault.State.Len(); m != n || d != n || v != n {
		t.Fatalf("backend objects: mender %d, dps %d, vault %d; want %d each", m, d, v, n)
	}
	l, _ := a.svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StateProvisioned, Limit: n})
	if l.Total != n {
		t.Fatalf("%d of %d devices provisioned", l.Total, n)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitTimeout bounds each wait of these tests on the app or the agents:
// far more than they take under the race detector on a loaded machine, but
// a stuck one fails, saying what was awaited, instead of hanging.
const waitTimeout = 60 * time.Second

// convergeTimeout bounds how long 100 gateways may take to be provisioned
// through the failing backends, once approved.
const convergeTimeout = 3 * time.Minute

// eventually polls cond until it holds or timeout passes, and says which.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitForN waits until n gateways are pending and returns their ids.
func waitForN(t *testing.T, svc *provision.Service, n int) []string {
	t.Helper()
	var l *provision.DeviceList
	var err error
	if !eventually(waitTimeout, func() bool {
		l, err = svc.ListDevices(context.Background(), provision.ListFilter{State: gatehouse.StatePending, Limit: n})
		return err == nil && l.Total == n
	}) {
		t.Fatalf("%d gateways did not enroll within %v (%v)", n, waitTimeout, err)
	}
	var ids []string
	for _, d := range l.Devices {
		ids = append(ids, d.ID)
	}
	return ids
}

// approveRetrying approves like an operator would while a backend is
// flaky: a name check that could not be answered is simply tried again,
// for up to waitTimeout.
func approveRetrying(t *testing.T, svc *provision.Service, id, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for ctx.Err() == nil {
		_, err := svc.Approve(ctx, "op", id, provision.Approval{Name: name})
		if err == nil {
			return
		}
		if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
			t.Errorf("approve %s: %v", id, err)
			return
		}
	}
	t.Errorf("approve %s: timed out", id)
}
