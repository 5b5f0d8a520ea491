package azure_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/rest"
	"gatehouse/simulate"
)

func symmetricKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func newEnrollment(t testing.TB, id string) gatehouse.Enrollment {
	return gatehouse.Enrollment{RegistrationID: id, DeviceID: id, IoTEdge: true,
		PrimaryKey: symmetricKey(t), SecondaryKey: symmetricKey(t)}
}

func dpsServer(t *testing.T, opts simulate.DPSServerOptions) *simulate.DPSServer {
	t.Helper()
	s, err := simulate.NewDPSServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dpsClient(t *testing.T, cfg azure.DPSConfig) *azure.DPS {
	t.Helper()
	d, err := azure.NewDPS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDPSAgainstSimulator(t *testing.T) {
	ctx := context.Background()
	hub := simulate.NewHub()
	srv := dpsServer(t, simulate.DPSServerOptions{IDScope: "0ne00ABCDEF", Hub: hub})
	d := dpsClient(t, srv.Config())
	if d.IDScope() != "0ne00ABCDEF" {
		t.Errorf("IDScope() = %q", d.IDScope())
	}
	if err := d.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := d.GetEnrollment(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Fatalf("GetEnrollment before create: err = %v, want ErrBackendNotFound", err)
	}

	want := newEnrollment(t, "gw-01")
	created, err := d.CreateEnrollment(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if created.ETag == "" {
		t.Errorf("created enrollment has no etag")
	}
	want.ETag = created.ETag
	if created != want {
		t.Errorf("CreateEnrollment = %+v, want %+v", created, want)
	}
	if got, err := d.GetEnrollment(ctx, "gw-01"); err != nil || got != want {
		t.Errorf("GetEnrollment = %+v, %v; want %+v", got, err, want)
	}

	if _, err := d.Registration(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("Registration before the device registered: err = %v, want ErrBackendNotFound", err)
	}
	if err := srv.State.Register("gw-01", want.PrimaryKey, ""); err != nil {
		t.Fatal(err)
	}
	reg, err := d.Registration(ctx, "gw-01")
	wantReg := gatehouse.Registration{RegistrationID: "gw-01", Status: "assigned", AssignedHub: simulate.DefaultHubHost, DeviceID: "gw-01"}
	if err != nil || reg != wantReg {
		t.Errorf("Registration = %+v, %v; want %+v", reg, err, wantReg)
	}

	if err := d.DeleteEnrollment(ctx, "gw-01"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetEnrollment(ctx, "gw-01"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("GetEnrollment after delete: err = %v", err)
	}
	err = d.DeleteEnrollment(ctx, "gw-01")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || rest.StatusOf(err) != 404 {
		t.Errorf("second delete: err = %v, want a 404 wrapping ErrBackendNotFound", err)
	}
	if !strings.Contains(err.Error(), "errorCode 404201") || !strings.Contains(err.Error(), "trackingId ") {
		t.Errorf("error %q lacks the service's errorCode and trackingId", err)
	}
}

func TestDPSWrongKey(t *testing.T) {
	srv := dpsServer(t, simulate.DPSServerOptions{})
	cfg := srv.Config()
	cfg.ConnectionString.SharedAccessKey = symmetricKey(t)
	d := dpsClient(t, cfg)
	for name, call := range map[string]func() error{
		"Check": func() error { return d.Check(context.Background()) },
		"Get":   func() error { _, err := d.GetEnrollment(context.Background(), "gw-01"); return err },
	} {
		err := call()
		if rest.StatusOf(err) != 401 || !strings.HasPrefix(err.Error(), "dps: ") {
			t.Errorf("%s: err = %v, want a dps 401", name, err)
			continue
		}
		for _, secret := range []string{cfg.ConnectionString.SharedAccessKey, "sig="} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q leaks %q", name, err, secret)
			}
		}
	}
}

func TestDPSETagMismatch(t *testing.T) {
	ctx := context.Background()
	d := dpsClient(t, dpsServer(t, simulate.DPSServerOptions{}).Config())
	first, err := d.CreateEnrollment(ctx, newEnrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	update := newEnrollment(t, "gw-01")
	update.ETag = first.ETag
	second, err := d.CreateEnrollment(ctx, update)
	if err != nil || second.ETag == first.ETag || second.PrimaryKey != update.PrimaryKey {
		t.Fatalf("update with the current etag = %+v, %v", second, err)
	}
	_, err = d.CreateEnrollment(ctx, update) // first's etag is stale now
	if rest.StatusOf(err) != 412 {
		t.Errorf("stale etag: err = %v, want a 412", err)
	}
}

func TestDPSPutOverExisting(t *testing.T) {
	ctx := context.Background()
	for _, conflict := range []bool{false, true} {
		d := dpsClient(t, dpsServer(t, simulate.DPSServerOptions{ConflictOnExisting: conflict}).Config())
		if _, err := d.CreateEnrollment(ctx, newEnrollment(t, "gw-01")); err != nil {
			t.Fatal(err)
		}
		_, err := d.CreateEnrollment(ctx, newEnrollment(t, "gw-01"))
		if conflict != errors.Is(err, gatehouse.ErrBackendExists) {
			t.Errorf("ConflictOnExisting=%v: err = %v", conflict, err)
		}
	}
}

func TestDPSKeysLeftOutOfGet(t *testing.T) {
	ctx := context.Background()
	d := dpsClient(t, dpsServer(t, simulate.DPSServerOptions{HideKeys: true}).Config())
	want, err := d.CreateEnrollment(ctx, newEnrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.GetEnrollment(ctx, "gw-01")
	if err != nil || got != want {
		t.Errorf("GetEnrollment = %+v, %v; want %+v (keys from the attestation mechanism)", got, err, want)
	}
}

func TestDPSConfigValidate(t *testing.T) {
	cs := azure.ConnectionString{HostName: "x.azure-devices-provisioning.net", SharedAccessKeyName: "p", SharedAccessKey: symmetricKey(t)}
	tests := map[string]azure.DPSConfig{
		"NoIDScope":     {ConnectionString: cs},
		"NoKey":         {ConnectionString: azure.ConnectionString{HostName: cs.HostName, SharedAccessKeyName: "p"}, IDScope: "0ne"},
		"RelativeURL":   {ConnectionString: cs, IDScope: "0ne", Endpoint: "/dps"},
		"NegativeLimit": {ConnectionString: cs, IDScope: "0ne", RateLimit: -1},
	}
	for name, cfg := range tests {
		if _, err := azure.NewDPS(cfg); err == nil || !strings.HasPrefix(err.Error(), "dps: ") {
			t.Errorf("%s: err = %v, want a dps error", name, err)
		} else if strings.Contains(err.Error(), cs.SharedAccessKey) {
			t.Errorf("%s: error leaks the key", name)
		}
	}
	if _, err := azure.NewDPS(azure.DPSConfig{ConnectionString: cs, IDScope: "0ne"}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestDPSInvalidID(t *testing.T) {
	d := dpsClient(t, dpsServer(t, simulate.DPSServerOptions{}).Config())
	for _, id := range []string{"", ".", ".."} {
		if _, err := d.GetEnrollment(context.Background(), id); err == nil || rest.StatusOf(err) != 0 {
			t.Errorf("GetEnrollment(%q): err = %v, want a local error", id, err)
		}
	}
}
