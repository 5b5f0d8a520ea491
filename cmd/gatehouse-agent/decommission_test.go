package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"gatehouse/agent"
)

// TestBinaryDecommissioned decommissions a gateway whose agent is waiting
// for approval: its long poll is refused with the server's reason, which
// the agent prints before it exits with the code systemd does not restart.
// A second start is refused at its enrollment in the same way.
func TestBinaryDecommissioned(t *testing.T) {
	bin := buildAgent(t)
	ts := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	g := newGateway(t, ts.url, "dc:a6:32:01:02:0d")
	g.writeMenderKey(t)
	run := g.start(t, bin)
	waitFor(t, &run.stderr, "pending: waiting for an operator")
	id := ts.pendingID(t, ctx, g.mac)
	if _, err := ts.svc.Decommission(ctx, "token:alice", id, false); err != nil {
		t.Fatal(err)
	}
	for i, r := range []*agentRun{run, nil} {
		if r == nil {
			r = g.start(t, bin)
		}
		if code := r.wait(t); code != agent.ExitDismissed {
			t.Fatalf("run %d: exit %d, want %d; stderr:\n%s", i, code, agent.ExitDismissed, r.stderr.String())
		}
		out := r.stderr.String()
		if !strings.Contains(out, "was decommissioned by token:alice on ") || !strings.Contains(out, "not retrying") {
			t.Errorf("run %d: stderr does not give the reason:\n%s", i, out)
		}
	}
}
