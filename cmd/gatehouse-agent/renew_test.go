package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/agent"
)

// run runs the agent binary with args in the gateway root and returns its
// exit code, stdout and stderr.
func (g *gateway) run(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--root", g.root)...)
	cmd.Env = g.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// TestBinaryRenew provisions a gateway against a real server whose Vault is
// the HTTP simulator, then runs `gatehouse-agent renew` as the timer does:
// the certificate is renewed, IoT Edge applied again and the old serial
// revoked in Vault; a run before the renewal point does nothing.
func TestBinaryRenew(t *testing.T) {
	bin := buildAgent(t)
	ts := startServer(t)
	// OpenBao's not_before_duration backdates NotBefore (path_roles.go):
	// with 3 h of it and a 1 h max_ttl a fresh certificate is three
	// quarters through its life, so it is due for renewal at once.
	role := ts.sims.Vault.State.Role()
	role.NotBeforeDuration, role.MaxTTL = 3*time.Hour, time.Hour
	if err := ts.sims.Vault.State.SetRole(role); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	g := newGateway(t, ts.url, "dc:a6:32:01:02:09")
	g.writeMenderKey(t)
	run := g.start(t, bin)
	waitFor(t, &run.stderr, "pending: waiting for an operator")
	ts.approveMAC(t, ctx, g.mac, "gw-renew")
	if code := run.wait(t); code != 0 {
		t.Fatalf("provisioning exit %d; stderr:\n%s", code, run.stderr.String())
	}
	certPath := filepath.Join(g.root, agent.DefaultOutDir, agent.FileDeviceCert)
	before, _ := os.ReadFile(certPath)
	old := ts.sims.Vault.State.Live()
	if len(old) != 1 {
		t.Fatalf("Vault holds %d live certificates after provisioning, want 1", len(old))
	}
	os.Remove(g.calls)

	code, stdout, stderr := g.run(t, bin, "renew")
	if code != 0 || !strings.Contains(stdout, "renewed the certificate of gw-renew") {
		t.Fatalf("renew: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	after, _ := os.ReadFile(certPath)
	if bytes.Equal(before, after) {
		t.Fatal("device.crt unchanged after a renewal")
	}
	calls, _ := os.ReadFile(g.calls)
	if !strings.Contains(string(calls), "iotedge config apply") || strings.Contains(string(calls), "mender") {
		t.Errorf("restarts after renewal = %q; want IoT Edge applied, Mender left alone", calls)
	}
	waitRevoked(t, ts, old[0].Serial)
	if live := ts.sims.Vault.State.Live(); len(live) != 1 || live[0].CertificatePEM != string(after) {
		t.Errorf("Vault's live certificates after renewal: %d, want only the one on disk", len(live))
	}

	// The renewed certificate is three quarters through too; at 0.9 it is
	// not due, and the run does nothing.
	n := ts.sims.Vault.State.Len()
	code, stdout, stderr = g.run(t, bin, "renew", "--renew-at", "0.9")
	if code != 0 || !strings.Contains(stdout, "nothing done") || ts.sims.Vault.State.Len() != n {
		t.Fatalf("renew before it is due: exit %d (Vault %d, had %d)\nstdout %s\nstderr %s", code, ts.sims.Vault.State.Len(), n, stdout, stderr)
	}
	if code, _, stderr := g.run(t, bin, "renew", "--renew-at", "2"); code != agent.ExitConfig || !strings.Contains(stderr, "--renew-at") {
		t.Errorf("--renew-at 2: exit %d, %s", code, stderr)
	}
}

// waitRevoked waits, ticking, until Vault lists serial as revoked: the
// server revokes it in a durable job after the agent's confirmation.
func waitRevoked(t *testing.T, ts *testServer, serial string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for !slices.Contains(ts.sims.Vault.State.Revoked(), serial) {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("serial %s never revoked in Vault", serial)
		}
	}
}
