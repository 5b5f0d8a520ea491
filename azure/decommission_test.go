package azure_test

import (
	"context"
	"fmt"
	"testing"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/simulate"
)

// TestHubDecommissionFindsAnUnrecordedDevice: a gateway decommissioned
// before its follow-up recorded a hub may still have registered. Its hub
// device is found by name in every hub; another gateway's is left alone,
// and a repeat finds nothing more to remove.
func TestHubDecommissionFindsAnUnrecordedDevice(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub("hub-a.azure-devices.net", "hub-b.azure-devices.net")
	for _, d := range []struct{ hub, id string }{{"hub-b.azure-devices.net", "gw-x"}, {"hub-a.azure-devices.net", "gw-y"}} {
		if err := hub.AddDevice(d.hub, gatehouse.HubDevice{DeviceID: d.id, IoTEdge: true}); err != nil {
			t.Fatal(err)
		}
	}
	b := azure.NewHubBackend(hub, nil, nil)
	in := dpsInput("gw-x")
	plan, err := b.Decommission(ctx, in, true)
	if err != nil || fmt.Sprint(plan) != "[{iothub device gw-x in hub-b.azure-devices.net would remove}]" {
		t.Fatalf("plan = %v, %v", plan, err)
	}
	if len(hub.Devices("hub-b.azure-devices.net")) != 1 {
		t.Fatal("the dry run removed the device")
	}
	got, err := b.Decommission(ctx, in, false)
	if err != nil || fmt.Sprint(got) != "[{iothub device gw-x in hub-b.azure-devices.net removed}]" {
		t.Fatalf("decommission = %v, %v", got, err)
	}
	if again, err := b.Decommission(ctx, in, false); err != nil || len(again) != 0 {
		t.Errorf("again = %v, %v; want nothing left to remove", again, err)
	}
	if len(hub.Devices("hub-b.azure-devices.net")) != 0 || len(hub.Devices("hub-a.azure-devices.net")) != 1 {
		t.Error("the wrong hub devices are left")
	}
}
