package azure_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/azure"
	gmanifest "gatehouse/manifest"
	"gatehouse/protocol"
	"gatehouse/simulate"
)

// dpsInput is a step's input whose Record merges into its Recorded, as
// provision's does (an empty value deletes), so the same input handed to a
// rerun carries what earlier attempts recorded.
func dpsInput(name string) *gatehouse.StepInput {
	in := &gatehouse.StepInput{
		Device:   &gatehouse.Device{ID: "d1", Name: name, MAC: "02:00:00:00:08:01"},
		Recorded: map[string]string{},
	}
	in.Record = func(_ context.Context, kv map[string]string) error {
		for k, v := range kv {
			if v == "" {
				delete(in.Recorded, k)
			} else {
				in.Recorded[k] = v
			}
		}
		return nil
	}
	return in
}

// TestDPSStepAdoptsItsEnrollment: DPS's PUT may create or replace, so a
// step whose answer was lost must adopt the enrollment (it holds the key
// the step recorded sending) instead of writing new keys under a gateway
// that may already hold the first ones.
func TestDPSStepAdoptsItsEnrollment(t *testing.T) {
	ctx := context.Background()
	dps := simulate.NewDPS("0ne00TEST")
	b := azure.NewDPSBackend(dps)
	dps.LoseNext(1)
	step := dpsInput("gw-dps")
	res, err := b.Provision(ctx, step)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := dps.GetEnrollment(ctx, "gw-dps")
	if dps.Len() != 1 || string(res.Secrets[protocol.FieldDPSPrimaryKey]) != e.PrimaryKey || !e.IoTEdge || e.DeviceID != "gw-dps" {
		t.Fatalf("%d enrollments %+v; the step's key must be the stored one", dps.Len(), e)
	}
	if res.Output[gatehouse.OutDPSIDScope] != "0ne00TEST" || res.Output[gatehouse.OutDPSRegistrationID] != "gw-dps" {
		t.Errorf("output = %v", res.Output)
	}
	in := dpsInput("gw-dps")
	in.Recorded = res.Output
	for _, want := range []string{"removed", "already gone"} {
		got, err := b.Decommission(ctx, in, false)
		// The enrollment, then its registration state record, which this
		// gateway never made (it never registered).
		if err != nil || len(got) != 2 || got[0].Result != want || got[1].Object != "registration state gw-dps" || got[1].Result != "already gone" {
			t.Errorf("decommission = %+v, %v; want %s", got, err, want)
		}
	}
}

type nameManifest struct{}

func (nameManifest) Render(d gmanifest.Data) (json.RawMessage, error) {
	return json.RawMessage(`{"modulesContent":{"$edgeAgent":{"properties.desired":{"schemaVersion":"1.1","modules":{}}},"$edgeHub":{"properties.desired":{"schemaVersion":"1.1","routes":{}}}}}`), nil
}

func TestHubFollowUp(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub("hub-a.azure-devices.net")
	dps := simulate.NewDPS("0ne00TEST")
	dps.Hub = hub
	res, err := azure.NewDPSBackend(dps).Provision(ctx, dpsInput("gw-hub"))
	if err != nil {
		t.Fatal(err)
	}
	b := azure.NewHubBackend(hub, dps, nameManifest{})
	look, err := b.Follow(ctx, dpsInput("gw-hub"))
	if err != nil || look.Done || !strings.Contains(look.Waiting, "not registered") {
		t.Fatalf("before registering: %+v, %v; want waiting", look, err)
	}
	if err := dps.Register("gw-hub", string(res.Secrets[protocol.FieldDPSPrimaryKey]), "hub-a.azure-devices.net"); err != nil {
		t.Fatal(err)
	}
	hub.LoseNext(1) // applyConfigurationContent is safe to repeat
	if _, err := b.Follow(ctx, dpsInput("gw-hub")); err == nil {
		t.Fatal("the lost answer did not reach the follow-up")
	}
	look, err = b.Follow(ctx, dpsInput("gw-hub"))
	if err != nil || !look.Done || look.Output[gatehouse.OutAssignedHub] != "hub-a.azure-devices.net" {
		t.Fatalf("after assignment: %+v, %v; want done in hub-a", look, err)
	}
	if _, ok := hub.Configuration("hub-a.azure-devices.net", "gw-hub"); !ok || len(hub.Devices("hub-a.azure-devices.net")) != 1 {
		t.Fatal("want one hub device with the manifest applied")
	}
	taken, err := b.NameTaken(ctx, "gw-hub")
	if err != nil || len(taken) != 1 {
		t.Errorf("NameTaken = %v, %v; want the hub", taken, err)
	}
}

func TestHubFollowUpStallsOnUnknownHub(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub("hub-a.azure-devices.net", "hub-b.azure-devices.net")
	dps := simulate.NewDPS("0ne00TEST")
	dps.Hub = hub
	res, _ := azure.NewDPSBackend(dps).Provision(ctx, dpsInput("gw-far"))
	dps.Register("gw-far", string(res.Secrets[protocol.FieldDPSPrimaryKey]), "hub-b.azure-devices.net")
	only := onlyHub{hub}
	look, err := azure.NewHubBackend(only, dps, nameManifest{}).Follow(ctx, dpsInput("gw-far"))
	if err != nil || !strings.Contains(look.Stalled, "no credentials") {
		t.Fatalf("look = %+v, %v; want stalled for want of credentials", look, err)
	}
}

// onlyHub holds credentials for hub-a alone.
type onlyHub struct{ *simulate.Hub }

func (onlyHub) Hubs() []string { return []string{"hub-a.azure-devices.net"} }
