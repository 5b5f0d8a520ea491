package simulate_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"gatehouse"
	"gatehouse/simulate"
)

func TestDPSCreateGet(t *testing.T) {
	ctx := context.Background()
	d := simulate.NewDPS("0ne00ABC123")
	if got := d.IDScope(); got != "0ne00ABC123" {
		t.Errorf("IDScope() = %q", got)
	}
	want := enrollment(t, "gw-01")
	created, err := d.CreateEnrollment(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	etag, at, ok := d.Meta("gw-01")
	if !ok || etag == "" || at.IsZero() {
		t.Errorf("Meta = %q, %v, %v; want an etag and a creation time", etag, at, ok)
	}
	want.ETag = etag
	if created != want {
		t.Errorf("CreateEnrollment returned %+v, want %+v", created, want)
	}
	got, err := d.GetEnrollment(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("GetEnrollment = %+v, want %+v", got, want)
	}
	if all := d.Enrollments(); len(all) != 1 || all[0] != want {
		t.Errorf("Enrollments() = %+v", all)
	}

	_, err = d.GetEnrollment(ctx, "gw-02")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || !strings.HasPrefix(err.Error(), "dps: 404") {
		t.Errorf("missing enrollment: err = %v, want a dps 404 wrapping ErrBackendNotFound", err)
	}
}

func TestDPSDefaultIDScope(t *testing.T) {
	if got := simulate.NewDPS("").IDScope(); got != simulate.DefaultIDScope {
		t.Errorf("IDScope() = %q, want %q", got, simulate.DefaultIDScope)
	}
}

func TestDPSCreateDuplicate(t *testing.T) {
	ctx := context.Background()
	d := simulate.NewDPS("")
	first, err := d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if err != nil {
		t.Fatal(err)
	}
	etag, _, _ := d.Meta("gw-01")

	_, err = d.CreateEnrollment(ctx, enrollment(t, "gw-01"))
	if !errors.Is(err, gatehouse.ErrBackendExists) || !strings.HasPrefix(err.Error(), "dps: 409") {
		t.Fatalf("err = %v, want a dps 409 wrapping ErrBackendExists", err)
	}
	got, err := d.GetEnrollment(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	if again, _, _ := d.Meta("gw-01"); got != first || again != etag || d.Len() != 1 {
		t.Errorf("conflict changed the enrollment: %+v (etag %s), want %+v (etag %s)", got, again, first, etag)
	}
}

func TestDPSRegistrationID(t *testing.T) {
	valid := []string{"a", "gw-01", "a.b_c:d-e", strings.Repeat("a", 128)}
	invalid := []string{"", "GW-01", "-gw", "gw-", "gw 01", "gw/01", "gw#1", "ü", strings.Repeat("a", 129)}
	ctx := context.Background()
	for _, id := range valid {
		d := simulate.NewDPS("")
		if _, err := d.CreateEnrollment(ctx, enrollment(t, id)); err != nil {
			t.Errorf("valid id %q: %v", id, err)
		}
	}
	for _, id := range invalid {
		d := simulate.NewDPS("")
		e := enrollment(t, id)
		e.DeviceID = ""
		_, err := d.CreateEnrollment(ctx, e)
		if err == nil || !strings.HasPrefix(err.Error(), "dps: 400") {
			t.Errorf("invalid id %q: err = %v, want a dps 400", id, err)
		}
		if _, err := d.GetEnrollment(ctx, id); err == nil || !strings.HasPrefix(err.Error(), "dps: 400") {
			t.Errorf("GetEnrollment(%q): err = %v, want a dps 400", id, err)
		}
		if d.Len() != 0 {
			t.Errorf("invalid id %q was stored", id)
		}
	}
}

func TestDPSKeys(t *testing.T) {
	tests := map[string]func(*gatehouse.Enrollment){
		"NoPrimary":       func(e *gatehouse.Enrollment) { e.PrimaryKey = "" },
		"NoSecondary":     func(e *gatehouse.Enrollment) { e.SecondaryKey = "" },
		"NotBase64":       func(e *gatehouse.Enrollment) { e.PrimaryKey = "not base64!" },
		"TooShort":        func(e *gatehouse.Enrollment) { e.PrimaryKey = symmetricKey(t, 15) },
		"TooLong":         func(e *gatehouse.Enrollment) { e.SecondaryKey = symmetricKey(t, 65) },
		"InvalidDeviceID": func(e *gatehouse.Enrollment) { e.DeviceID = "gw 01" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			d := simulate.NewDPS("")
			e := enrollment(t, "gw-01")
			mutate(&e)
			_, err := d.CreateEnrollment(context.Background(), e)
			if err == nil || !strings.HasPrefix(err.Error(), "dps: 400") {
				t.Fatalf("err = %v, want a dps 400", err)
			}
			// Keys are secrets: they must never show up in errors.
			for _, k := range []string{e.PrimaryKey, e.SecondaryKey} {
				if len(k) > 4 && strings.Contains(err.Error(), k) {
					t.Errorf("error %q contains key material", err)
				}
			}
			if d.Len() != 0 {
				t.Errorf("rejected enrollment was stored")
			}
		})
	}
	for _, n := range []int{16, 64} {
		e := enrollment(t, "gw-01")
		e.PrimaryKey, e.SecondaryKey = symmetricKey(t, n), symmetricKey(t, n)
		if _, err := simulate.NewDPS("").CreateEnrollment(context.Background(), e); err != nil {
			t.Errorf("%d-byte keys: %v", n, err)
		}
	}
}

func TestDPSConcurrent(t *testing.T) {
	ctx := context.Background()
	d := simulate.NewDPS("")
	ids := []string{"gw-0", "gw-1", "gw-2", "gw-3", "gw-4"}
	var mu sync.Mutex
	created := map[string]int{}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id := ids[i%len(ids)]
			_, err := d.CreateEnrollment(ctx, enrollment(t, id))
			switch {
			case err == nil:
				mu.Lock()
				created[id]++
				mu.Unlock()
			case !errors.Is(err, gatehouse.ErrBackendExists):
				t.Error(err)
			}
			if _, err := d.GetEnrollment(ctx, id); err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
				t.Error(err)
			}
			_ = d.Enrollments()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if created[id] != 1 {
			t.Errorf("%s created %d times, want 1", id, created[id])
		}
	}
	if d.Len() != len(ids) {
		t.Errorf("Len() = %d, want %d", d.Len(), len(ids))
	}
}
