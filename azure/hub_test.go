package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/rest"
	"gatehouse/simulate"
)

const manifest = `{"modulesContent":{"$edgeAgent":{"properties.desired":{"schemaVersion":"1.1"}},"$edgeHub":{"properties.desired":{"schemaVersion":"1.1","routes":{}}}}}`

func hubServer(t *testing.T, hosts ...string) *simulate.HubServer {
	t.Helper()
	s, err := simulate.NewHubServer(simulate.HubServerOptions{Hubs: hosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// hubClient lifts the default 100/min per hub, which would make every test
// call wait 0.6 s, unless the test sets its own rate.
func hubClient(t *testing.T, cfg azure.HubConfig) *azure.IoTHub {
	t.Helper()
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 60000
	}
	h, err := azure.NewIoTHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHubAgainstSimulator(t *testing.T) {
	ctx := context.Background()
	const a, b = "hub-a.azure-devices.net", "hub-b.azure-devices.net"
	hubs := hubServer(t, a, b)
	dps := dpsServer(t, simulate.DPSServerOptions{Hub: hubs.State})
	h := hubClient(t, hubs.Config())
	if got := h.Hubs(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Hubs() = %v", got)
	}
	if err := h.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := h.GetDevice(ctx, b, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Fatalf("GetDevice before registration: err = %v, want ErrBackendNotFound", err)
	}

	e, err := dpsClient(t, dps.Config()).CreateEnrollment(ctx, newEnrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	if err := dps.State.Register("gw-01", e.PrimaryKey, b); err != nil {
		t.Fatal(err)
	}
	dev, err := h.GetDevice(ctx, strings.ToUpper(b), "gw-01") // DPS may report hosts in any case
	want := gatehouse.HubDevice{DeviceID: "gw-01", Status: "enabled", ConnectionState: "Connected", IoTEdge: true}
	if err != nil || dev != want {
		t.Errorf("GetDevice = %+v, %v; want %+v", dev, err, want)
	}
	if _, err := h.GetDevice(ctx, a, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("device also in the other hub: err = %v", err)
	}

	if err := h.ApplyConfiguration(ctx, b, "gw-01", json.RawMessage(manifest)); err != nil {
		t.Fatal(err)
	}
	if got, ok := hubs.State.Configuration(b, "gw-01"); !ok || !jsonEqual(t, got, manifest) {
		t.Errorf("stored configuration = %s", got)
	}
	err = h.ApplyConfiguration(ctx, a, "gw-01", json.RawMessage(manifest))
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || !strings.Contains(err.Error(), "errorCode 404001") {
		t.Errorf("apply to a missing device: err = %v, want a 404 with errorCode 404001", err)
	}

	if err := h.DeleteDevice(ctx, b, "gw-01"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteDevice(ctx, b, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("second delete: err = %v, want ErrBackendNotFound", err)
	}
}

func TestHubUnknownHub(t *testing.T) {
	s := hubServer(t)
	h := hubClient(t, s.Config())
	_, err := h.GetDevice(context.Background(), "elsewhere.azure-devices.net", "gw-01")
	want := "iothub: no credentials for hub elsewhere.azure-devices.net; configure its connection string"
	if !errors.Is(err, azure.ErrUnknownHub) || err.Error() != want {
		t.Errorf("err = %v, want %q wrapping ErrUnknownHub", err, want)
	}
	if n := s.Faults.Requests(); n != 0 {
		t.Errorf("%d requests sent for an unknown hub", n)
	}
}

func TestHubWrongKey(t *testing.T) {
	s := hubServer(t, "a.azure-devices.net", "b.azure-devices.net")
	cfg := s.Config()
	cfg.Hubs[1].SharedAccessKey = cfg.Hubs[0].SharedAccessKey // b signed with a's key
	h := hubClient(t, cfg)
	if _, err := h.GetDevice(context.Background(), "a.azure-devices.net", "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("hub a: err = %v, want a plain 404", err)
	}
	_, err := h.GetDevice(context.Background(), "b.azure-devices.net", "gw-01")
	if rest.StatusOf(err) != 401 || strings.Contains(err.Error(), cfg.Hubs[0].SharedAccessKey) {
		t.Errorf("hub b: err = %v, want a 401 without the key", err)
	}
	err = h.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "check credentials for b.azure-devices.net") || strings.Contains(err.Error(), "for a.azure") {
		t.Errorf("Check: err = %v, want only hub b to fail", err)
	}
}

func TestHubInvalidContent(t *testing.T) {
	s := hubServer(t)
	h := hubClient(t, s.Config())
	err := h.ApplyConfiguration(context.Background(), simulate.DefaultHubHost, "gw-01", json.RawMessage(`{"modulesContent":`))
	if err == nil || s.Faults.Requests() != 0 {
		t.Errorf("err = %v after %d requests; want a local error", err, s.Faults.Requests())
	}
}

func TestHubConfigValidate(t *testing.T) {
	cs := azure.ConnectionString{HostName: "a.azure-devices.net", SharedAccessKeyName: "iothubowner", SharedAccessKey: symmetricKey(t)}
	upper := cs
	upper.HostName = "A.azure-devices.net"
	tests := map[string]azure.HubConfig{
		"NoHubs":          {},
		"Duplicate":       {Hubs: []azure.ConnectionString{cs, upper}},
		"BadHub":          {Hubs: []azure.ConnectionString{{HostName: "x"}}},
		"EndpointNoCreds": {Hubs: []azure.ConnectionString{cs}, Endpoints: map[string]string{"b.azure-devices.net": "http://127.0.0.1:1"}},
		"EndpointBadURL":  {Hubs: []azure.ConnectionString{cs}, Endpoints: map[string]string{"a.azure-devices.net": "127.0.0.1:1"}},
	}
	for name, cfg := range tests {
		if _, err := azure.NewIoTHub(cfg); err == nil || !strings.HasPrefix(err.Error(), "iothub: ") {
			t.Errorf("%s: err = %v, want an iothub error", name, err)
		}
	}
}

func TestHubRequests(t *testing.T) {
	ctx := context.Background()
	s := newScript(t, answer(204, ""))
	cs := azure.ConnectionString{HostName: "myhub.azure-devices.net", SharedAccessKeyName: "iothubowner", SharedAccessKey: symmetricKey(t)}
	h := hubClient(t, azure.HubConfig{Hubs: []azure.ConnectionString{cs}, Endpoints: map[string]string{cs.HostName: s.URL}})
	if err := h.DeleteDevice(ctx, cs.HostName, "gw-01"); err != nil {
		t.Fatal(err)
	}
	if err := h.ApplyConfiguration(ctx, cs.HostName, "gw-01", json.RawMessage(manifest)); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	del, apply := reqs[0], reqs[1]
	if del.method != "DELETE" || del.path != "/devices/gw-01" || del.header.Get("If-Match") != "*" || del.apiVersion != "2021-04-12" {
		t.Errorf("delete = %s %s If-Match %q api-version %s", del.method, del.path, del.header.Get("If-Match"), del.apiVersion)
	}
	if apply.method != "POST" || apply.path != "/devices/gw-01/applyConfigurationContent" ||
		string(apply.body) != manifest || apply.header.Get("Content-Type") != "application/json" {
		t.Errorf("apply = %s %s %q: %s", apply.method, apply.path, apply.header.Get("Content-Type"), apply.body)
	}
	if auth := apply.header.Get("Authorization"); !strings.HasPrefix(auth, "SharedAccessSignature sr=myhub.azure-devices.net&") {
		t.Errorf("Authorization = %q", auth)
	}
}

func TestHubErrorShapes(t *testing.T) {
	tests := map[string]struct {
		body, header, want string
	}{
		"Nested": {`{"Message":"{\"errorCode\":404001,\"trackingId\":\"abc-G:1\",\"message\":\"Device gw-01 not found\",\"info\":{},\"timestampUtc\":\"2024-03-14T09:54:49Z\"}","ExceptionMessage":""}`,
			"", "Device gw-01 not found (errorCode 404001, trackingId abc-G:1)"},
		"Legacy": {`{"Message":"ErrorCode:DeviceNotFound;gw-01","ExceptionMessage":"Tracking ID:1bc3-G:20-TimeStamp:02/05/2021 10:03:38"}`,
			"", "gw-01 (errorCode DeviceNotFound)"},
		"HeaderOnly": {`not json`, "DeviceNotFound", "not json (errorCode DeviceNotFound)"},
	}
	cs := azure.ConnectionString{HostName: "myhub.azure-devices.net", SharedAccessKeyName: "iothubowner", SharedAccessKey: symmetricKey(t)}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newScript(t, answer(404, tc.body, "IotHub-ErrorCode", tc.header))
			h := hubClient(t, azure.HubConfig{Hubs: []azure.ConnectionString{cs}, Endpoints: map[string]string{cs.HostName: s.URL}})
			_, err := h.GetDevice(context.Background(), cs.HostName, "gw-01")
			if !errors.Is(err, gatehouse.ErrBackendNotFound) || !strings.HasSuffix(err.Error(), ": "+tc.want) {
				t.Errorf("err = %v, want it to end in %q", err, tc.want)
			}
		})
	}
}

func TestHubRateLimitPerHub(t *testing.T) {
	s := newScript(t, answer(200, `{"deviceId":"gw-01","status":"enabled"}`))
	var hubs []azure.ConnectionString
	endpoints := map[string]string{}
	for _, host := range []string{"a.azure-devices.net", "b.azure-devices.net"} {
		hubs = append(hubs, azure.ConnectionString{HostName: host, SharedAccessKeyName: "iothubowner", SharedAccessKey: symmetricKey(t)})
		endpoints[host] = s.URL
	}
	// 60/min is one call a second with a burst of one, per hub.
	h := hubClient(t, azure.HubConfig{Hubs: hubs, Endpoints: endpoints, RateLimit: 60})
	start := time.Now()
	var both time.Duration
	for i, host := range []string{"a.azure-devices.net", "b.azure-devices.net", "a.azure-devices.net"} {
		if _, err := h.GetDevice(context.Background(), host, "gw-01"); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			both = time.Since(start)
		}
	}
	if both > 900*time.Millisecond {
		t.Errorf("first calls to hubs a and b took %v: b waited for a's limiter", both)
	}
	if took := time.Since(start); took < 800*time.Millisecond {
		t.Errorf("a second call to hub a took %v in all, want it paced to ~1s", took)
	}
}
