package simulate_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/simulate"
)

const manifest = `{"modulesContent":{"$edgeAgent":{"properties.desired":{"schemaVersion":"1.1"}},"$edgeHub":{"properties.desired":{"schemaVersion":"1.1","routes":{}}}}}`

func TestHubDevices(t *testing.T) {
	ctx := context.Background()
	h := simulate.NewHub("a.azure-devices.net", "b.azure-devices.net")
	if got := h.Hubs(); len(got) != 2 || got[0] != "a.azure-devices.net" {
		t.Errorf("Hubs() = %v", got)
	}
	if err := h.AddDevice("a.azure-devices.net", gatehouse.HubDevice{DeviceID: "gw-01", IoTEdge: true}); err != nil {
		t.Fatal(err)
	}
	err := h.AddDevice("A.azure-devices.net", gatehouse.HubDevice{DeviceID: "gw-01"})
	if !errors.Is(err, gatehouse.ErrBackendExists) {
		t.Errorf("duplicate (host in another case): err = %v, want ErrBackendExists", err)
	}
	got, err := h.GetDevice(ctx, "a.azure-devices.net", "gw-01")
	want := gatehouse.HubDevice{DeviceID: "gw-01", Status: "enabled", ConnectionState: "Disconnected", IoTEdge: true}
	if err != nil || got != want {
		t.Errorf("GetDevice = %+v, %v; want %+v", got, err, want)
	}
	if err := h.SetConnectionState("a.azure-devices.net", "gw-01", "Connected"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteDevice(ctx, "a.azure-devices.net", "gw-01"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteDevice(ctx, "a.azure-devices.net", "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("second delete: err = %v, want ErrBackendNotFound", err)
	}
	if len(h.Devices("a.azure-devices.net")) != 0 {
		t.Errorf("Devices() not empty after delete")
	}
}

func TestHubUnknownHub(t *testing.T) {
	h := simulate.NewHub()
	_, err := h.GetDevice(context.Background(), "nope.azure-devices.net", "gw-01")
	if !errors.Is(err, azure.ErrUnknownHub) || !strings.Contains(err.Error(), "nope.azure-devices.net") {
		t.Errorf("err = %v, want ErrUnknownHub naming the hub", err)
	}
}

func TestHubApplyConfiguration(t *testing.T) {
	ctx := context.Background()
	host := simulate.DefaultHubHost
	h := simulate.NewHub()
	h.AddDevice(host, gatehouse.HubDevice{DeviceID: "edge", IoTEdge: true})
	h.AddDevice(host, gatehouse.HubDevice{DeviceID: "leaf"})
	if err := h.ApplyConfiguration(ctx, host, "edge", json.RawMessage(manifest)); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.Configuration(host, "edge"); !ok || string(got) != manifest {
		t.Errorf("Configuration = %s, %v; want the manifest", got, ok)
	}
	tests := map[string]struct {
		device, content, prefix string
	}{
		"NotJSON":       {"edge", `{`, "iothub: 400"},
		"NotAnObject":   {"edge", `[]`, "iothub: 400"},
		"NoContent":     {"edge", `{"foo":{}}`, "iothub: 400"},
		"NotEdge":       {"leaf", manifest, "iothub: 400"},
		"UnknownDevice": {"gone", manifest, "iothub: 404"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := h.ApplyConfiguration(ctx, host, tc.device, json.RawMessage(tc.content))
			if err == nil || !strings.HasPrefix(err.Error(), tc.prefix) {
				t.Errorf("err = %v, want prefix %q", err, tc.prefix)
			}
		})
	}
}

func TestHubFaults(t *testing.T) {
	h := simulate.NewHub()
	h.FailNext(1, nil)
	_, err := h.GetDevice(context.Background(), simulate.DefaultHubHost, "gw-01")
	if !errors.Is(err, simulate.ErrTransient) || !strings.HasPrefix(err.Error(), "iothub: ") {
		t.Errorf("err = %v, want an iothub ErrTransient", err)
	}
}
