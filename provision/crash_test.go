package provision_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/provision"
)

// TestCrashBetweenStepsConverges kills a job runner after the Mender step
// has committed while the DPS and Vault steps are in flight, the way a
// process dies: its database handle goes away and nothing more is written.
// A second runner on the same database must take the stranded steps up and
// finish, leaving exactly one object in each backend.
func TestCrashBetweenStepsConverges(t *testing.T) {
	t.Parallel()
	tb := setup(t) // simulators and a first service we do not use for work
	path := filepath.Join(t.TempDir(), "crash.db")
	dpsGate, pkiGate := newGate(true), newGate(true)
	tb.mender.SetInventoryDelay(0) // not under test here
	cfg := fastConfig(tb.backends())
	cfg.Backends.DPS = gatedDPS{DPS: tb.dps, gate: dpsGate}
	cfg.Backends.PKI = gatedPKI{PKI: tb.pki, gate: pkiGate}
	// Runner A must not time its own steps out, however loaded the
	// machine; runner B takes A's stranded steps up after a few seconds,
	// its attempts given room to wait for the one database connection on a
	// loaded machine.
	cfgA := cfg
	cfgA.JobTimeout, cfgA.RescueAfter = time.Minute, 2*time.Minute
	cfg.JobTimeout, cfg.RescueAfter = 2*time.Second, 3*time.Second

	dbA := openDB(t, path)
	a, err := provision.New(dbA, cfgA.build())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb.db, tb.svc = dbA, a
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := a.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-crash"}); err != nil {
		t.Fatal(err)
	}
	waitStep(t, a, id, gatehouse.StepMender, gatehouse.StepSucceeded)
	waitCalls(t, dpsGate, pkiGate)
	before, _ := a.Device(context.Background(), id)

	// The crash: the database goes first, so runner A cannot record anything
	// more; then its in-flight calls are cut off before the backends answer.
	dbA.Close()
	stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	a.StopAndCancel(stopCtx)
	cancel()
	dpsGate.Open()
	pkiGate.Open()

	dbB := openDB(t, path)
	b := startService(t, dbB, cfg)
	tb.db, tb.svc = dbB, b
	tb.waitFor(t, g, gatehouse.StateProvisioned)
	// Runner A may have got a certificate whose answer it never committed;
	// runner B must have revoked it: one valid certificate, the bundle's.
	live := tb.pki.Live()
	if tb.mender.Len() != 1 || tb.dps.Len() != 1 || len(live) != 1 {
		t.Fatalf("after crash: mender %d, dps %d, vault %d valid objects; want 1 each", tb.mender.Len(), tb.dps.Len(), len(live))
	}
	d, _ := b.Device(context.Background(), id)
	if serial := stepOutput(d, gatehouse.StepVault)[gatehouse.OutSerial]; serial != live[0].Serial {
		t.Errorf("the gateway's certificate is %s, but the valid one is %s", serial, live[0].Serial)
	}
	if got, was := step(d, gatehouse.StepMender).Attempts, step(before, gatehouse.StepMender).Attempts; got != was {
		t.Errorf("mender step ran %d times after the crash; a finished step must not rerun", got-was)
	}
}

func waitStep(t *testing.T, svc *provision.Service, id string, name gatehouse.StepName, want gatehouse.StepState) {
	t.Helper()
	var err error
	reached := eventually(30*time.Second, func() bool {
		var d *gatehouse.Device
		d, err = svc.Device(context.Background(), id)
		return err != nil || step(d, name).State == want
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reached {
		t.Fatalf("step %s of %s never reached %s", name, id, want)
	}
}

// waitCalls waits until the held DPS and Vault calls are in flight.
func waitCalls(t *testing.T, gates ...*gate) {
	t.Helper()
	if !eventually(30*time.Second, func() bool { return gates[0].entered.Load() > 0 && gates[1].entered.Load() > 0 }) {
		t.Fatal("dps and vault steps never started")
	}
}
