package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/internal/pgtest"
	"gatehouse/provision"
	"gatehouse/rest"
	"gatehouse/sandbox"
)

// replica starts one gatehouse server on the shared database, with the
// simulators' backends passed through wrap.
func replica(t *testing.T, dsn string, sims *sandbox.Simulators, wrap func([]gatehouse.Backend) []gatehouse.Backend, quotas *[][]*rest.Quota) *app {
	t.Helper()
	cfg, err := appFromConfig(sims.Config())
	if err != nil {
		t.Fatal(err)
	}
	if quotas != nil {
		*quotas = append(*quotas, cfg.Quotas)
	}
	if wrap != nil {
		cfg.Backends = wrap(cfg.Backends)
	}
	cfg.Listen, cfg.DB = "127.0.0.1:0", dsn
	// Held far longer than the test waits: an agent gets its bundle only
	// if its long poll is woken.
	cfg.LongPoll = 10 * time.Minute
	cfg.Jobs.JobTimeout, cfg.Jobs.RescueAfter = 2*time.Second, 3*time.Second
	cfg.Jobs.RetryBase, cfg.Jobs.RetryMax = 50*time.Millisecond, 500*time.Millisecond
	a, err := startApp(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestReplicas runs two servers on one PostgreSQL database and proves they
// behave as one service: an agent's long poll held on A finishes when an
// operator approves on B; B's live view hears of A's changes; a nonce used
// on one is refused on the other; every job runs once (one attempt per
// step, one object per gateway in each backend).
func TestReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	sims, err := sandbox.Start(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	var quotas [][]*rest.Quota
	a, b := replica(t, dsn, sims, nil, &quotas), replica(t, dsn, sims, nil, &quotas)
	defer a.Close()
	defer b.Close()
	// Each replica's DPS, hub and Mender budgets are drawn from the
	// database, under the same names, so the two share them.
	for i, qs := range quotas {
		var names []string
		for _, q := range qs {
			if !q.Shared() {
				t.Errorf("replica %d paces %s by itself", i, q.Name)
			}
			names = append(names, q.Name)
		}
		slices.Sort(names)
		if len(names) < 2 || !slices.Equal(names, names0(quotas)) {
			t.Errorf("replica %d quotas %v, want the same two or more as replica 0", i, names)
		}
	}
	ctx := context.Background()
	token, _, err := a.svc.CreateToken(ctx, provision.TokenSpec{Name: "replicas", Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	watch, stopWatch := b.svc.Notifier().WatchAll()
	defer stopWatch()

	const n = 4
	dir := t.TempDir()
	done := make(chan error, n)
	agentCtx, stopAgents := context.WithCancel(ctx)
	defer stopAgents()
	for i := range n {
		keyPath, out := filepath.Join(dir, fmt.Sprint("key-", i)), filepath.Join(dir, fmt.Sprint("out-", i))
		writeEd25519Key(t, keyPath)
		// Half the agents long-poll A, half B; every approval goes to the
		// other replica.
		url := []string{a.server.URL(), b.server.URL()}[i%2]
		go func() {
			_, err := agent.Run(agentCtx, agent.Config{Server: url, InsecureHTTP: true, KeyPath: keyPath, OutDir: out,
				MAC: fmt.Sprintf("02:00:00:00:01:%02x", i), RestartCommands: []string{}, Logger: quiet})
			done <- err
		}()
	}
	ids := waitForN(t, a.svc, n)
	// B's live view learns of enrollments that A took.
	wantWatched(t, watch, ids)
	for _, id := range ids {
		d, err := a.svc.Device(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscanf(d.MAC[len(d.MAC)-2:], "%x", &i)
		other := []*app{b, a}[i%2]
		approve(t, other.server.URL(), token, id, fmt.Sprintf("gw-replica-%d", i))
	}
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("agent: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("an agent did not get its bundle within %v of its approval on the other replica", waitTimeout)
		}
	}
	for _, id := range ids {
		d, err := b.svc.Device(ctx, id)
		if err != nil || d.State != gatehouse.StateProvisioned {
			t.Fatalf("device %s: %+v %v", id, d, err)
		}
		for _, s := range d.Steps {
			if s.Name != gatehouse.StepHub && s.Attempts != 1 {
				t.Errorf("%s step %s ran %d times, want once", d.Name, s.Name, s.Attempts)
			}
		}
	}
	if sims.Mender.State.Len() != n || sims.DPS.State.Len() != n || sims.Vault.State.Len() != n {
		t.Errorf("backend objects: mender %d, dps %d, vault %d; want %d each",
			sims.Mender.State.Len(), sims.DPS.State.Len(), sims.Vault.State.Len(), n)
	}

	exp := time.Now().Add(time.Minute)
	if err := a.svc.UseNonce(ctx, "fp-replicas", "nonce-1", exp); err != nil {
		t.Fatalf("first use on A: %v", err)
	}
	if err := b.svc.UseNonce(ctx, "fp-replicas", "nonce-1", exp); err == nil {
		t.Error("a nonce used on A was accepted again on B")
	}
}

func names0(quotas [][]*rest.Quota) []string {
	var out []string
	for _, q := range quotas[0] {
		out = append(out, q.Name)
	}
	slices.Sort(out)
	return out
}

// wantWatched waits until a watcher has been told of every id.
func wantWatched(t *testing.T, w *provision.Watcher, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.After(waitTimeout)
	for {
		ch, all := w.Take()
		for _, id := range ch {
			seen[id] = true
		}
		if all || !slices.ContainsFunc(ids, func(id string) bool { return !seen[id] }) {
			return
		}
		select {
		case <-w.Wake():
		case <-deadline:
			t.Fatalf("the other replica's live view heard of %d of %d changes within %v", len(seen), len(ids), waitTimeout)
		}
	}
}

// stuck is a provisioner whose step never finishes: the replica running it
// is killed before it could.
type stuck struct {
	gatehouse.Provisioner
	entered chan struct{}
}

func (s *stuck) Provision(ctx context.Context, _ *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestReplicaKilledMidStep: replica A dies while its Vault step runs (its
// database connections gone, its HTTP server closed, nothing recorded); B,
// started afterwards, takes the step up once River on B finds it stuck, and
// the gateway gets its bundle from B with one object per backend.
func TestReplicaKilledMidStep(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	sims, err := sandbox.Start(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	entered := make(chan struct{}, 1)
	a := replica(t, dsn, sims, func(bs []gatehouse.Backend) []gatehouse.Backend {
		for i, b := range bs {
			if p, ok := b.(gatehouse.Provisioner); ok && p.Step() == gatehouse.StepVault {
				bs[i] = &stuck{Provisioner: p, entered: entered}
			}
		}
		return bs
	}, nil)
	ctx := context.Background()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "key")
	writeEd25519Key(t, keyPath)
	runAgent := func(ctx context.Context, url string) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := agent.Run(ctx, agent.Config{Server: url, InsecureHTTP: true, KeyPath: keyPath, OutDir: filepath.Join(dir, "out"),
				MAC: "02:00:00:00:02:01", RestartCommands: []string{}, Logger: quiet})
			done <- err
		}()
		return done
	}
	onA, stopOnA := context.WithCancel(ctx)
	runAgent(onA, a.server.URL())
	id := waitForN(t, a.svc, 1)[0]
	if _, err := a.svc.Approve(ctx, "token:ops", id, provision.Approval{Name: "gw-survivor"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("A never started the Vault step")
	}
	// Kill A: its HTTP server goes and its pool stops giving out
	// connections, so it records nothing more and stops renewing its
	// leadership. Closing waits for connections in use, so it is not
	// waited for.
	stopOnA()
	a.server.Close(ctx)
	go a.db.Close()
	defer func() {
		stop, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		a.svc.StopAndCancel(stop)
	}()

	b := replica(t, dsn, sims, nil, nil)
	defer b.Close()
	select {
	case err := <-runAgent(ctx, b.server.URL()):
		if err != nil {
			t.Fatalf("agent on B: %v", err)
		}
	case <-time.After(2 * waitTimeout):
		d, _ := b.svc.Device(ctx, id)
		t.Fatalf("the gateway did not get its bundle from B: %+v", d)
	}
	checkFiles(t, filepath.Join(dir, "out"), "gw-survivor")
	if sims.Mender.State.Len() != 1 || sims.DPS.State.Len() != 1 || sims.Vault.State.Len() != 1 {
		t.Errorf("backend objects: mender %d, dps %d, vault %d; want one each",
			sims.Mender.State.Len(), sims.DPS.State.Len(), sims.Vault.State.Len())
	}
}
