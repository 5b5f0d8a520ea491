package simulate_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/simulate"
)

const hubVersion = "?api-version=2021-04-12"

func newHubServer(t *testing.T, opts simulate.HubServerOptions) *simulate.HubServer {
	t.Helper()
	s, err := simulate.NewHubServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// hubError unpacks IoT Hub's envelope, whose Message is itself JSON.
func hubError(t *testing.T, r reply) dpsErrorBody {
	t.Helper()
	var outer struct{ Message, ExceptionMessage string }
	r.json(t, &outer)
	var e dpsErrorBody
	if err := json.Unmarshal([]byte(outer.Message), &e); err != nil {
		t.Fatalf("Message is not JSON: %s", r.body)
	}
	return e
}

func TestHubServerAuth(t *testing.T) {
	s := newHubServer(t, simulate.HubServerOptions{Hubs: []string{"a.azure-devices.net", "b.azure-devices.net"}})
	a, b := s.ConnectionStrings[0], s.ConnectionStrings[1]
	if a.HostName != "a.azure-devices.net" || a.SharedAccessKey == b.SharedAccessKey {
		t.Fatalf("connection strings = %v, %v; want one key per hub", a, b)
	}
	mixed := a
	mixed.SharedAccessKey = b.SharedAccessKey // sr names hub a, signed with b's key
	tests := map[string]struct {
		path, auth string
		status     int
	}{
		"HubA":         {"/devices/gw-01" + hubVersion, token(t, a), http.StatusNotFound},
		"HubB":         {"/devices/gw-01" + hubVersion, token(t, b), http.StatusNotFound},
		"OtherHubsKey": {"/devices/gw-01" + hubVersion, token(t, mixed), http.StatusUnauthorized},
		"NoToken":      {"/devices/gw-01" + hubVersion, "", http.StatusUnauthorized},
		"NoAPIVersion": {"/devices/gw-01", token(t, a), http.StatusBadRequest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := send(t, s.URL, "GET", tc.path, tc.auth, nil)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.status, r.body)
			}
			if e := hubError(t, r); e.ErrorCode/1000 != tc.status || e.Message == "" || e.TrackingID == "" {
				t.Errorf("error = %+v", e)
			}
			if r.header.Get("IotHub-ErrorCode") == "" {
				t.Errorf("no IotHub-ErrorCode header")
			}
		})
	}
}

func TestHubServerScopedToken(t *testing.T) {
	s := newHubServer(t, simulate.HubServerOptions{})
	cs := s.ConnectionStrings[0]
	s.State.AddDevice(cs.HostName, gatehouse.HubDevice{DeviceID: "gw-01"})
	scoped, _ := azure.SASToken(cs.HostName+"/devices/gw-01", cs.SharedAccessKeyName, cs.SharedAccessKey, farFuture())
	if r := send(t, s.URL, "GET", "/devices/gw-01"+hubVersion, scoped, nil); r.status != http.StatusOK {
		t.Errorf("token scoped to the device: %d %s", r.status, r.body)
	}
	if r := send(t, s.URL, "GET", "/devices/gw-010"+hubVersion, scoped, nil); r.status != http.StatusUnauthorized {
		t.Errorf("token scoped to another device: %d, want 401 (prefix match is per segment)", r.status)
	}
}

func TestHubServerDevice(t *testing.T) {
	s := newHubServer(t, simulate.HubServerOptions{})
	cs := s.ConnectionStrings[0]
	auth := token(t, cs)
	s.State.AddDevice(cs.HostName, gatehouse.HubDevice{DeviceID: "gw-01", IoTEdge: true})
	r := send(t, s.URL, "GET", "/devices/gw-01"+hubVersion, auth, nil)
	var dev struct {
		DeviceID, ETag, Status, ConnectionState, GenerationID string
		Capabilities                                          struct{ IoTEdge bool }
		Authentication                                        struct {
			Type         string
			SymmetricKey struct{ PrimaryKey string }
		}
	}
	r.json(t, &dev)
	if r.status != 200 || dev.DeviceID != "gw-01" || dev.ETag == "" || dev.Status != "enabled" ||
		dev.ConnectionState != "Disconnected" || !dev.Capabilities.IoTEdge || dev.Authentication.Type != "sas" ||
		dev.Authentication.SymmetricKey.PrimaryKey == "" || dev.GenerationID == "" {
		t.Errorf("GET device: %d %s", r.status, r.body)
	}
	r = send(t, s.URL, "GET", "/devices/gw-02"+hubVersion, auth, nil)
	if e := hubError(t, r); r.status != 404 || e.ErrorCode != 404001 || r.header.Get("IotHub-ErrorCode") != "DeviceNotFound" {
		t.Errorf("unknown device: %d %s", r.status, r.body)
	}
}

func TestHubServerApplyConfiguration(t *testing.T) {
	s := newHubServer(t, simulate.HubServerOptions{})
	cs := s.ConnectionStrings[0]
	auth := token(t, cs)
	s.State.AddDevice(cs.HostName, gatehouse.HubDevice{DeviceID: "gw-01", IoTEdge: true})
	path := "/devices/gw-01/applyConfigurationContent" + hubVersion
	if r := send(t, s.URL, "POST", path, auth, json.RawMessage(manifest)); r.status != http.StatusNoContent {
		t.Fatalf("apply: %d %s", r.status, r.body)
	}
	if got, ok := s.State.Configuration(cs.HostName, "gw-01"); !ok || string(got) != manifest {
		t.Errorf("stored configuration = %s", got)
	}
	if r := send(t, s.URL, "POST", path, auth, json.RawMessage(`{"nothing":{}}`)); r.status != http.StatusBadRequest {
		t.Errorf("apply without modulesContent: %d, want 400", r.status)
	}
	if r := send(t, s.URL, "POST", "/devices/gw-02/applyConfigurationContent"+hubVersion, auth, json.RawMessage(manifest)); r.status != http.StatusNotFound {
		t.Errorf("apply to an unknown device: %d, want 404", r.status)
	}
}

func TestHubServerDelete(t *testing.T) {
	s := newHubServer(t, simulate.HubServerOptions{})
	cs := s.ConnectionStrings[0]
	auth := token(t, cs)
	s.State.AddDevice(cs.HostName, gatehouse.HubDevice{DeviceID: "gw-01"})
	path := "/devices/gw-01" + hubVersion
	tests := []struct {
		name    string
		ifMatch []string
		status  int
	}{
		{"NoIfMatch", nil, http.StatusPreconditionFailed},
		{"StaleETag", []string{"If-Match", `"stale"`}, http.StatusPreconditionFailed},
		{"Star", []string{"If-Match", "*"}, http.StatusNoContent},
		{"Gone", []string{"If-Match", "*"}, http.StatusNotFound},
	}
	for _, tc := range tests {
		if r := send(t, s.URL, "DELETE", path, auth, nil, tc.ifMatch...); r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	if !strings.Contains(s.Config().Endpoints[cs.HostName], "127.0.0.1") {
		t.Errorf("Config().Endpoints = %v", s.Config().Endpoints)
	}
}

func farFuture() time.Time { return time.Now().Add(time.Hour) }
