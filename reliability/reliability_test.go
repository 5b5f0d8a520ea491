package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
)

var (
	sharedOnce sync.Once
	shared     *Harness
	sharedErr  error
)

// harness builds the binaries once for the whole test binary; each test
// gets a directory of its own.
func harness(t *testing.T) *Harness {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = NewHarness(context.Background(), "", os.Stderr) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared.Sub(strings.ReplaceAll(t.Name(), "/", "-"))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// TestScenariosShort runs every scenario at the size CI runs.
func TestScenariosShort(t *testing.T) {
	h := harness(t)
	for _, s := range sorted() {
		t.Run(s.Name, func(t *testing.T) {
			r := runOne(context.Background(), h.Sub(s.Name), s, Size{Short: true})
			if r.Skipped != "" && r.Passed() {
				t.Skip(r.Skipped)
			}
			var out bytes.Buffer
			printTable(&out, []*Result{r})
			t.Log("\n" + out.String())
			if !r.Passed() {
				t.Errorf("%s failed: losses %d, duplicates %d, error %v", s.Name, r.Losses, r.Duplicates, r.Err)
			}
		})
	}
}

// TestHarnessSurvivesKill proves the harness itself: a gateway provisioned
// through a real serve process is still provisioned after the process is
// killed with SIGKILL and started again on the same database and address.
func TestHarnessSurvivesKill(t *testing.T) {
	ctx := context.Background()
	h := harness(t)
	b, err := h.StartBackends(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv, err := h.StartServer(ctx, ServerOptions{Config: b.EnvFile})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	op, err := srv.OperatorClient(ctx, "harness")
	if err != nil {
		t.Fatal(err)
	}
	gws, err := h.NewGateways(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	agentCtx, stop := context.WithTimeout(ctx, 2*time.Minute)
	defer stop()
	done := make(chan error, 1)
	go func() { _, err := gws[0].RunAgent(agentCtx, srv.URL); done <- err }()
	pending, err := WaitDevices(ctx, op, gatehouse.StatePending, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	approveCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := op.Approve(approveCtx, pending[gws[0].MAC].ID, "gw-harness", nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("agent: %v\nserver log:\n%s", err, srv.LogTail(20))
	}
	if name, ok := gws[0].Bundled(); !ok || name != "gw-harness" {
		t.Fatalf("bundle: name %q, written %v", name, ok)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := WaitDevices(ctx, op, gatehouse.StateProvisioned, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if srv.Starts() != 2 {
		t.Errorf("starts = %d, want 2", srv.Starts())
	}
	if n := b.Mender.State.Len(); n != 1 {
		t.Errorf("mender holds %d devices, want 1", n)
	}
}
