package azure_test

import (
	"context"
	"errors"
	"testing"

	"gatehouse"
	"gatehouse/contract"
	"gatehouse/simulate"
)

// TestDPSContract runs every DPS client call through the official service
// swagger. There is no published IoT Hub data-plane spec (see the specs
// folder's README), so the hub client has no contract test; its requests
// are checked field by field in TestHubRequests instead.
func TestDPSContract(t *testing.T) {
	doc, err := contract.LoadSwagger2("azure-dps/service-2021-10-01.json")
	if errors.Is(err, contract.ErrNoSpecs) {
		t.Skip("skipping: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	checker, err := contract.NewChecker(doc)
	if err != nil {
		t.Fatal(err)
	}
	// HideKeys makes GetEnrollment use the attestation mechanism call too.
	srv := dpsServer(t, simulate.DPSServerOptions{Wrap: checker.Wrap, HideKeys: true, Hub: simulate.NewHub()})
	d := dpsClient(t, srv.Config())
	ctx := context.Background()

	steps := []struct {
		name string
		call func() error
	}{
		{"Check", func() error { return d.Check(ctx) }},
		{"GetMissing", func() error { return notFoundIsFine(d.GetEnrollment(ctx, "gw-01")) }},
		{"Create", func() error { _, err := d.CreateEnrollment(ctx, newEnrollment(t, "gw-01")); return err }},
		{"Get", func() error { _, err := d.GetEnrollment(ctx, "gw-01"); return err }},
		{"Update", func() error {
			e, err := d.GetEnrollment(ctx, "gw-01")
			if err == nil {
				_, err = d.CreateEnrollment(ctx, e) // with If-Match
			}
			return err
		}},
		{"RegistrationMissing", func() error { return notFoundIsFine(d.Registration(ctx, "gw-01")) }},
		{"Registration", func() error {
			e, _ := srv.State.GetEnrollment(ctx, "gw-01")
			if err := srv.State.Register("gw-01", e.PrimaryKey, ""); err != nil {
				return err
			}
			_, err := d.Registration(ctx, "gw-01")
			return err
		}},
		// external-apis.md §2.5: DELETE /registrations/{id} removes the
		// registration record only; the enrollment stays.
		{"DeleteRegistration", func() error { return d.DeleteRegistration(ctx, "gw-01") }},
		{"DeleteRegistrationMissing", func() error {
			if err := d.DeleteRegistration(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
				return errors.Join(errors.New("a second delete is not ErrBackendNotFound"), err)
			}
			_, err := d.GetEnrollment(ctx, "gw-01")
			return err
		}},
		{"Delete", func() error { return d.DeleteEnrollment(ctx, "gw-01") }},
	}
	for _, s := range steps {
		if err := s.call(); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
	n, problems := checker.Result()
	if len(problems) > 0 || n < len(steps) {
		t.Errorf("contract: %s", checker.Summary())
	}
	t.Log(checker.Summary())
}

func notFoundIsFine[T any](_ T, err error) error {
	if errors.Is(err, gatehouse.ErrBackendNotFound) {
		return nil
	}
	return err
}
