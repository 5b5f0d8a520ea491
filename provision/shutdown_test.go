package provision_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/simulate"
	"gatehouse/store"
)

// TestShutdownLetsRunningStepFinish: a step that is calling out when the
// shutdown starts gets its grace and completes; Shutdown returns only once
// the step's result is committed, so nothing is left for the next start.
func TestShutdownLetsRunningStepFinish(t *testing.T) {
	t.Parallel()
	dps, g := simulate.NewDPS("0ne00TEST"), newGate(true)
	stopping := &logSignal{msg: "stopping the job runner", ch: make(chan struct{})}
	cfg := fastConfig(apis{DPS: gatedDPS{DPS: dps, gate: g}})
	cfg.Logger = slog.New(stopping)
	db := openDB(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	tb := &testBundle{db: db, svc: startService(t, db, cfg), dps: dps}
	id := approveHeld(t, tb, g, "gw-grace")

	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tb.svc.Shutdown(ctx, waitTimeout) }()
	select {
	case <-stopping.ch:
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a step was held", err)
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not start stopping the job runner")
	}
	g.Open()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Shutdown did not return after the held step was released")
	}
	d, err := tb.svc.Device(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st := step(d, gatehouse.StepDPS); st.State != gatehouse.StepSucceeded || d.State != gatehouse.StateProvisioned {
		t.Fatalf("after Shutdown returned: step %s, device %s; the running step must have finished within the grace", st.State, d.State)
	}
	if n, calls := dps.Len(), g.entered.Load(); n != 1 || calls != 1 {
		t.Fatalf("dps holds %d enrollments after %d calls; want 1 of 1", n, calls)
	}
}

// TestShutdownCancelsStepsPastGrace: a step still running when the grace
// runs out is cancelled, and that is no failure: its job goes back to the
// queue with the attempt given back, and a service started afresh on the
// same database runs it to completion, leaving one enrollment in DPS.
//
// River decides what a cancelled job becomes: in river v0.51.2,
// internal/jobexecutor/job_executor.go, JobExecutor.reportError asks
// isSoftStopCancelError whether the job's context was cancelled by the
// client's stop (cause rivercommon.ErrStop, set by Client.StopAndCancel in
// client.go) and the worker's error wraps context.Canceled; if so it sets
// the job with riverdriver.JobSetStateInterrupted: state available, attempt
// minus one, no error recorded, and no retry policy or error handler run.
// Our step returns such an error because the failure it would record is
// written under the same cancelled context (runStep's failStep, whose
// store.DB.InTx cannot begin), so nothing is recorded on the device either.
func TestShutdownCancelsStepsPastGrace(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	dps, g := simulate.NewDPS("0ne00TEST"), newGate(true)
	cfg := fastConfig(apis{DPS: gatedDPS{DPS: dps, gate: g}})
	dbA := openDB(t, path)
	tb := &testBundle{db: dbA, svc: startService(t, dbA, cfg), dps: dps}
	gw := newGateway(t)
	id := approveHeldGateway(t, tb, g, gw, "gw-cut")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := tb.svc.Shutdown(ctx, 50*time.Millisecond); err != nil {
		t.Fatalf("Shutdown: %v; cancelling steps past the grace is expected, not an error", err)
	}
	d, err := tb.svc.Device(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	st := step(d, gatehouse.StepDPS)
	if st.State == gatehouse.StepFailed || st.LastError != "" || d.State == gatehouse.StateFailed {
		t.Fatalf("cancelled step recorded as a failure: step %s (%q), device %s", st.State, st.LastError, d.State)
	}
	if state, attempt := jobOf(t, dbA, st.JobID); state != "available" || attempt != 0 {
		t.Fatalf("cancelled step's job is %s after %d attempts; want available, its attempt given back", state, attempt)
	}
	dbA.Close()

	g.Open()
	dbB := openDB(t, path)
	tb.db, tb.svc = dbB, startService(t, dbB, cfg)
	tb.waitFor(t, gw, gatehouse.StateProvisioned)
	if n, calls := dps.Len(), g.entered.Load(); n != 1 || calls != 2 {
		t.Fatalf("dps holds %d enrollments after %d calls; want 1 after 2 (cancelled, then run again)", n, calls)
	}
}

// approveHeld enrolls a fresh gateway and approves it, then waits until its
// DPS step is held at g.
func approveHeld(t *testing.T, tb *testBundle, g *gate, name string) string {
	t.Helper()
	return approveHeldGateway(t, tb, g, newGateway(t), name)
}

func approveHeldGateway(t *testing.T, tb *testBundle, g *gate, gw *gateway, name string) string {
	t.Helper()
	id := tb.enroll(t, gw).DeviceID
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: name}); err != nil {
		t.Fatal(err)
	}
	if !eventually(waitTimeout, func() bool { return g.entered.Load() > 0 }) {
		t.Fatal("the dps step never started")
	}
	return id
}

func jobOf(t *testing.T, db *store.DB, id int64) (state string, attempt int) {
	t.Helper()
	err := db.SQL().QueryRowContext(context.Background(), `SELECT state, attempt FROM river_job WHERE id = ?`, id).Scan(&state, &attempt)
	if err != nil {
		t.Fatalf("job %d: %v", id, err)
	}
	return state, attempt
}

// logSignal is a log handler that closes ch at the first record whose
// message starts with msg, and drops every record.
type logSignal struct {
	msg  string
	once sync.Once
	ch   chan struct{}
}

func (l *logSignal) Enabled(context.Context, slog.Level) bool { return true }

func (l *logSignal) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, l.msg) {
		l.once.Do(func() { close(l.ch) })
	}
	return nil
}

func (l *logSignal) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSignal) WithGroup(string) slog.Handler      { return l }
