package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
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
		for _, q := range qs {
			if !q.Shared() {
				t.Errorf("replica %d paces %s by itself", i, q.Name)
			}
		}
		if names := quotaNames(qs); len(names) < 2 || !slices.Equal(names, quotaNames(quotas[0])) {
			t.Errorf("replica %d quotas %v, want the same two or more as replica 0", i, names)
		}
	}
	ctx := context.Background()
	token, _, err := a.svc.CreateToken(ctx, provision.TokenSpec{Name: "replicas", Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	// The web page's live view, on B: its event stream over HTTP.
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	events := stream(t, streamCtx, b.server.URL(), token)

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
	wantStreamed(t, events, ids)
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

// quotaNames are the quotas' names, sorted: hubs come in map order.
func quotaNames(qs []*rest.Quota) []string {
	var out []string
	for _, q := range qs {
		out = append(out, q.Name)
	}
	slices.Sort(out)
	return out
}

// stream opens the live view's event stream and sends each event's data.
func stream(t *testing.T, ctx context.Context, url, token string) <-chan streamEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	out := make(chan streamEvent, 64)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e streamEvent
				if json.Unmarshal([]byte(data), &e) == nil {
					out <- e
				}
			}
		}
	}()
	return out
}

type streamEvent struct {
	IDs []string `json:"ids"`
	All bool     `json:"all"`
}

// wantStreamed waits until the stream has named every id.
func wantStreamed(t *testing.T, events <-chan streamEvent, ids []string) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.After(waitTimeout)
	for slices.ContainsFunc(ids, func(id string) bool { return !seen[id] }) {
		select {
		case e := <-events:
			if e.All {
				return
			}
			for _, id := range e.IDs {
				seen[id] = true
			}
		case <-deadline:
			t.Fatalf("the other replica's live view named %d of %d changed gateways within %v", len(seen), len(ids), waitTimeout)
		}
	}
}
