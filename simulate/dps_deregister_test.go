package simulate_test

import (
	"context"
	"errors"
	"testing"

	"gatehouse"
	"gatehouse/simulate"
)

// DELETE /registrations/{id} removes the registration record, not the
// enrollment nor the hub identity (external-apis.md §2.5); an absent record
// is a 404. A lost answer still removed it.
func TestDPSDeleteRegistration(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub()
	d := simulate.NewDPS("")
	d.Hub = hub
	e, err := d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Register("gw-01", e.PrimaryKey, ""); err != nil {
		t.Fatal(err)
	}
	d.LoseNext(1)
	if err := d.DeleteRegistration(ctx, "gw-01"); !errors.Is(err, simulate.ErrLostResponse) {
		t.Fatalf("first delete: %v, want the lost answer", err)
	}
	if _, err := d.Registration(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("after the delete: %v, want ErrBackendNotFound", err)
	}
	if err := d.DeleteRegistration(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("second delete: %v, want ErrBackendNotFound", err)
	}
	if _, err := d.GetEnrollment(ctx, "gw-01"); err != nil {
		t.Errorf("the enrollment went with the registration: %v", err)
	}
	if len(hub.Devices(hub.Hubs()[0])) != 1 {
		t.Error("the hub identity went with the registration")
	}
}
