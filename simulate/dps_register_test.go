package simulate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/simulate"
)

func TestDPSDeleteEnrollment(t *testing.T) {
	ctx := context.Background()
	d := simulate.NewDPS("")
	for _, id := range []string{"gw-01", "gw-02"} {
		if _, err := d.CreateEnrollment(ctx, enrollment(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteEnrollment(ctx, "gw-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetEnrollment(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("after delete: err = %v, want ErrBackendNotFound", err)
	}
	if all := d.Enrollments(); len(all) != 1 || all[0].RegistrationID != "gw-02" {
		t.Errorf("Enrollments() = %+v, want only gw-02", all)
	}
	err := d.DeleteEnrollment(ctx, "gw-01")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || !strings.HasPrefix(err.Error(), "dps: 404") {
		t.Errorf("second delete: err = %v, want a dps 404 wrapping ErrBackendNotFound", err)
	}
}

func TestDPSCreateWithETag(t *testing.T) {
	ctx := context.Background()
	d := simulate.NewDPS("")
	first, err := d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	update := enrollment(t, "gw-01")
	update.ETag = first.ETag
	second, err := d.CreateEnrollment(ctx, update)
	if err != nil {
		t.Fatalf("update with the current etag: %v", err)
	}
	if second.ETag == first.ETag || second.PrimaryKey != update.PrimaryKey {
		t.Errorf("update = %+v, want the new keys under a new etag", second)
	}
	_, err = d.CreateEnrollment(ctx, update) // first.ETag is stale now
	if err == nil || !strings.HasPrefix(err.Error(), "dps: 412") {
		t.Errorf("stale etag: err = %v, want a dps 412", err)
	}
}

func TestDPSRegister(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub("hub-a.azure-devices.net", "hub-b.azure-devices.net")
	d := simulate.NewDPS("")
	d.Hub = hub
	e, err := d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Registration(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Fatalf("before registering: err = %v, want ErrBackendNotFound", err)
	}
	if err := d.Register("gw-01", e.SecondaryKey, "hub-b.azure-devices.net"); err != nil {
		t.Fatal(err)
	}
	r, err := d.Registration(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	want := gatehouse.Registration{RegistrationID: "gw-01", Status: "assigned", AssignedHub: "hub-b.azure-devices.net", DeviceID: "gw-01"}
	if r != want {
		t.Errorf("Registration = %+v, want %+v", r, want)
	}
	dev, err := hub.GetDevice(ctx, "hub-b.azure-devices.net", "gw-01")
	if err != nil || !dev.IoTEdge || dev.ConnectionState != "Connected" {
		t.Errorf("hub device = %+v, %v; want a connected edge device", dev, err)
	}
	if _, err := hub.GetDevice(ctx, "hub-a.azure-devices.net", "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("device also in the other hub: err = %v", err)
	}
}

func TestDPSRegisterRefused(t *testing.T) {
	ctx := context.Background()
	d := simulate.NewDPS("")
	d.Hub = simulate.NewHub()
	e, err := d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := symmetricKey(t, 32)
	tests := map[string]struct {
		id, key, hub, prefix string
	}{
		"WrongKey":      {"gw-01", wrong, "", "dps: 401"},
		"NoEnrollment":  {"gw-02", e.PrimaryKey, "", "dps: 404"},
		"UnlinkedHub":   {"gw-01", e.PrimaryKey, "other.azure-devices.net", "dps: 400"},
		"EmptyKeyFails": {"gw-01", "", "", "dps: 401"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := d.Register(tc.id, tc.key, tc.hub)
			if err == nil || !strings.HasPrefix(err.Error(), tc.prefix) {
				t.Fatalf("err = %v, want prefix %q", err, tc.prefix)
			}
			if strings.Contains(err.Error(), e.PrimaryKey) || (len(tc.key) > 4 && strings.Contains(err.Error(), tc.key)) {
				t.Errorf("error %q contains key material", err)
			}
		})
	}
	if _, err := d.Registration(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("a refused registration was recorded: err = %v", err)
	}
}

func TestDPSAssignDelay(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub()
	d := simulate.NewDPS("")
	d.Hub = hub
	d.SetAssignDelay(50 * time.Millisecond)
	e, err := d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Register("gw-01", e.PrimaryKey, ""); err != nil {
		t.Fatal(err)
	}
	r, err := d.Registration(ctx, "gw-01")
	if err != nil || r.Status != "assigning" || r.AssignedHub != "" {
		t.Fatalf("right after Register: %+v, %v; want assigning, no hub yet", r, err)
	}
	if _, err := hub.GetDevice(ctx, simulate.DefaultHubHost, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("device in the hub before assignment: err = %v", err)
	}
	r = waitAssigned(t, d, "gw-01")
	if r.AssignedHub != simulate.DefaultHubHost {
		t.Errorf("AssignedHub = %q, want %q", r.AssignedHub, simulate.DefaultHubHost)
	}
	if _, err := hub.GetDevice(ctx, simulate.DefaultHubHost, "gw-01"); err != nil {
		t.Errorf("assigned device missing from the hub: %v", err)
	}
}

// waitAssigned polls like gatehouse's follow-up job does, with a deadline.
func waitAssigned(t *testing.T, d gatehouse.DPS, id string) gatehouse.Registration {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := d.Registration(context.Background(), id)
		if err == nil && r.Status == "assigned" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration %s not assigned in time: %+v, %v", id, r, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDPSDeleteEnrollmentKeepsHubDevice(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub()
	d := simulate.NewDPS("")
	d.Hub = hub
	e, _ := d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if err := d.Register("gw-01", e.PrimaryKey, ""); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteEnrollment(ctx, "gw-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Registration(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("registration survived its enrollment: err = %v", err)
	}
	if _, err := hub.GetDevice(ctx, simulate.DefaultHubHost, "gw-01"); err != nil {
		t.Errorf("hub device should stay: %v", err)
	}
}
