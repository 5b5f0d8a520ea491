package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/sandbox"
)

// TestDevicesDecommissionAndForget drives `devices decommission --dry-run`,
// `devices decommission`, `devices show` and `devices forget` against a
// real server whose backends are the simulators over HTTP, so every
// removal goes through the real clients.
func TestDevicesDecommissionAndForget(t *testing.T) {
	ctx := context.Background()
	sims, a := startSimulated(t, 50*time.Millisecond, func(cfg *appConfig) { cfg.Jobs.FollowPollMin = 50 * time.Millisecond })
	env := operatorEnv(t, a, "cli")
	id := configuredGateway(t, a, sims, "gw-cli")
	held := func() string {
		e, _ := sims.DPS.State.GetEnrollment(ctx, "gw-cli")
		_, regErr := sims.DPS.State.Registration(ctx, "gw-cli")
		hub := 0
		for _, h := range sims.Hub.State.Hubs() {
			hub += len(sims.Hub.State.Devices(h))
		}
		return fmt.Sprintf("mender %d, enrollment %q, registration %v, hub devices %d, valid certificates %d",
			sims.Mender.State.Len(), e.RegistrationID, regErr == nil, hub, len(sims.Vault.State.Live()))
	}
	before := held()
	if before != `mender 1, enrollment "gw-cli", registration true, hub devices 1, valid certificates 1` {
		t.Fatalf("before: %s", before)
	}

	code, out, errOut := runCLI(t, env, "decommission", "--dry-run", id)
	if code != 0 {
		t.Fatalf("dry run: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"nothing was changed", "enrollment gw-cli", "registration state gw-cli", "device gw-cli in ", "would remove", "would revoke"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if after := held(); after != before {
		t.Fatalf("the dry run changed a backend: %s", after)
	}
	if d, _ := a.svc.Device(ctx, id); d.State != gatehouse.StateConfigured {
		t.Fatalf("the dry run changed the state to %s", d.State)
	}
	code, out, errOut = runCLI(t, env, "decommission", "-o", "json", "--dry-run", id)
	var plan gatehouse.Decommission
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil || !plan.DryRun || len(plan.Backends) != 4 {
		t.Fatalf("dry run as JSON: exit %d, %s %s", code, out, errOut)
	}

	code, _, errOut = runCLI(t, env, "forget", id)
	if code != 1 || !strings.Contains(errOut, "only dismissed or decommissioned") {
		t.Errorf("forgetting a configured gateway: exit %d, %s", code, errOut)
	}
	code, out, errOut = runCLI(t, env, "decommission", id)
	if code != 0 || !strings.Contains(out, "decommissioned by token:cli") {
		t.Fatalf("decommission: exit %d, %s %s", code, out, errOut)
	}
	if !eventually(waitTimeout, func() bool {
		d, err := a.svc.Device(ctx, id)
		return err == nil && d.Decommission != nil && d.Decommission.Done()
	}) {
		t.Fatal("the decommission did not finish")
	}
	if after := held(); after != `mender 0, enrollment "", registration false, hub devices 0, valid certificates 0` {
		t.Errorf("after: %s", after)
	}
	code, out, _ = runCLI(t, env, "show", id)
	for _, want := range []string{"Decommissioned by token:cli", "succeeded", "enrollment gw-cli", "removed", "revoked", "removed_everywhere"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI(t, env, "forget", id)
	if code != 0 || !strings.Contains(out, "forgot "+id+" (was decommissioned)") {
		t.Fatalf("forget: exit %d, %s %s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, env, "show", id)
	if code != 1 || !strings.Contains(errOut, "was forgotten by token:cli") {
		t.Errorf("show of a forgotten gateway: exit %d, %s", code, errOut)
	}
}

// configuredGateway enrolls a gateway with a fresh key, approves it and
// registers it with DPS as IoT Edge would, until it is configured.
func configuredGateway(t *testing.T, a *app, sims *sandbox.Simulators, name string) string {
	t.Helper()
	ctx := context.Background()
	id := approveOne(t, a.svc, name)
	state := func(want gatehouse.State) bool {
		d, err := a.svc.Device(ctx, id)
		return err == nil && d.State == want
	}
	if !eventually(waitTimeout, func() bool { return state(gatehouse.StateProvisioned) }) {
		t.Fatal("not provisioned")
	}
	e, err := sims.DPS.State.GetEnrollment(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := sims.DPS.State.Register(name, e.PrimaryKey, ""); err != nil {
		t.Fatal(err)
	}
	if !eventually(waitTimeout, func() bool { return state(gatehouse.StateConfigured) }) {
		t.Fatal("not configured")
	}
	return id
}

func TestDevicesDecommissionRequests(t *testing.T) {
	now := time.Now().UTC()
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"DELETE /api/v1/devices/{id}": reply(200, gatehouse.Decommission{DeviceID: "d1", By: "token:alice", At: &now,
			Backends: []gatehouse.BackendRemoval{{Backend: "dps", State: gatehouse.StepFailed, Attempts: 2, LastError: "dps: 503", Removals: []gatehouse.Removal{}}}}),
		"POST /api/v1/devices/{id}/forget": apiError(409, "conflict", "device d1 is still being removed from dps (failed: dps: 503)"),
	})
	code, out, errOut := runCLI(t, envFor(api), "decommission", "d1", "--dry-run")
	if code != 0 || !strings.Contains(out, "error: dps: 503") {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, envFor(api), "forget", "d1")
	if code != 1 || !strings.Contains(errOut, "still being removed from dps") {
		t.Fatalf("forget: exit %d, stderr %s", code, errOut)
	}
	got := api.requests()
	if len(got) != 2 || got[0].Method != "DELETE" || got[0].Path != "/api/v1/devices/d1" || got[0].Query != "dry_run=true" ||
		got[1].Method != "POST" || got[1].Path != "/api/v1/devices/d1/forget" {
		t.Errorf("requests = %+v", got)
	}
	if code, _, errOut := runCLI(t, envFor(api), "decommission"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Errorf("without an id: exit %d, %s", code, errOut)
	}
}
