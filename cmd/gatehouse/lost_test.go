package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/provision"
	"gatehouse/sandbox"
	"gatehouse/simulate"
)

// TestLostAnswersOverHTTP drops the answer of a backend's first
// state-changing request after the simulator acted on it, with the real
// clients and the real transport retries, one backend at a time. Every
// backend must end with exactly one live object for the gateway, and the
// gateway's Mender client must get its token.
func TestLostAnswersOverHTTP(t *testing.T) {
	writes := func(r *http.Request) bool {
		return r.Method != http.MethodGet && !strings.Contains(r.URL.Path, "/login")
	}
	cases := map[string]func(s *sandbox.Simulators) *simulate.HTTPFaults{
		"mender": func(s *sandbox.Simulators) *simulate.HTTPFaults { return s.Mender.Faults },
		"dps":    func(s *sandbox.Simulators) *simulate.HTTPFaults { return s.DPS.Faults },
		"iothub": func(s *sandbox.Simulators) *simulate.HTTPFaults { return s.Hub.Faults },
		"vault":  func(s *sandbox.Simulators) *simulate.HTTPFaults { return s.Vault.Faults },
	}
	for backend, faults := range cases {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			sims, a := startLossy(t)
			faults(sims).LoseNext(1, writes)
			provisionThroughLoss(t, sims, a, "gw-lost")
		})
	}
}

func startLossy(t *testing.T) (*sandbox.Simulators, *app) {
	t.Helper()
	return startSimulated(t, 100*time.Millisecond, func(cfg *appConfig) {
		cfg.Logger = quiet
		cfg.Jobs.RetryBase, cfg.Jobs.RetryMax, cfg.Jobs.FollowPollMin = 20*time.Millisecond, 200*time.Millisecond, 50*time.Millisecond
	})
}

func provisionThroughLoss(t *testing.T, sims *sandbox.Simulators, a *app, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "mender-agent.pem")
	key := writeEd25519Key(t, keyPath)
	mc, err := sims.MenderClient(key, "02:00:00:00:0e:01", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	go mc.Run(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := agent.Run(ctx, agent.Config{Server: a.server.URL(), InsecureHTTP: true, KeyPath: keyPath, OutDir: filepath.Join(dir, "out"),
			MAC: "02:00:00:00:0e:01", RestartCommands: []string{}, Logger: quiet})
		done <- err
	}()
	id := waitForN(t, a.svc, 1)[0]
	if _, err := a.svc.Approve(ctx, "op", id, provision.Approval{Name: name}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
	registerLikeIoTEdge(agent.Config{OutDir: filepath.Join(dir, "out"), Logger: quiet}, sims)
	d := waitState(t, ctx, a.svc, id, gatehouse.StateConfigured)
	checkMenderConnected(t, ctx, sims, mc, name)
	checkOneObjectEach(t, sims, d, name)
}

func waitState(t *testing.T, ctx context.Context, svc *provision.Service, id string, want gatehouse.State) *gatehouse.Device {
	t.Helper()
	for {
		d, err := svc.Device(ctx, id)
		if err == nil && d.State == want {
			return d
		}
		select {
		case <-ctx.Done():
			t.Fatalf("device never %s: %+v", want, d)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func checkOneObjectEach(t *testing.T, sims *sandbox.Simulators, d *gatehouse.Device, name string) {
	t.Helper()
	live := sims.Vault.State.Live()
	hub := sims.Hub.State.Hubs()[0]
	if n := sims.Mender.State.Len(); n != 1 || sims.DPS.State.Len() != 1 || len(live) != 1 || len(sims.Hub.State.Devices(hub)) != 1 {
		t.Fatalf("mender %d, dps %d, valid certificates %d, hub devices %d; want one each",
			n, sims.DPS.State.Len(), len(live), len(sims.Hub.State.Devices(hub)))
	}
	for _, st := range d.Steps {
		if st.Name == gatehouse.StepVault && st.Output[gatehouse.OutSerial] != live[0].Serial {
			t.Errorf("the gateway's certificate is %s, the valid one %s", st.Output[gatehouse.OutSerial], live[0].Serial)
		}
	}
	if dev := sims.Mender.State.Devices()[0]; len(dev.AuthSets) != 1 {
		t.Errorf("mender device has %d auth sets, want 1", len(dev.AuthSets))
	}
	if _, ok := sims.Hub.State.Configuration(hub, name); !ok {
		t.Error("no manifest in the hub")
	}
}
