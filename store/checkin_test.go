package store_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/internal/pgtest"
	"gatehouse/store"
)

// TestCheckin runs the device-status read on both dialects: what it
// returns, its refusals, and that it notes the device seen exactly when
// TouchDevice would.
func TestCheckin(t *testing.T) {
	t.Parallel()
	opens := map[string]func(t *testing.T) *store.DB{
		"sqlite": func(t *testing.T) *store.DB { return openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db")) },
	}
	if os.Getenv(pgtest.Env) != "" {
		opens["postgres"] = func(t *testing.T) *store.DB { return openPostgres(t, pgtest.URL(t)) }
	}
	for name, open := range opens {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name string
				fn   func(t *testing.T, db *store.DB, clk *clock)
			}{
				{"Status", testCheckinStatus},
				{"Refusals", testCheckinRefusals},
				{"Touch", testCheckinTouch},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					db := open(t)
					clk := &clock{now: t0}
					db.Now = clk.Now
					tc.fn(t, db, clk)
				})
			}
		})
	}
}

func testCheckinStatus(t *testing.T, db *store.DB, _ *clock) {
	d := newDevice("dev-01")
	d.VerificationCode = "ABCD-EFGH"
	mustCreate(t, db, d)
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("gw-01")})
	got, err := db.DeviceStatus(t.Context(), "fp-dev-01")
	if err != nil {
		t.Fatalf("DeviceStatus: %v", err)
	}
	want := store.DeviceStatus{DeviceID: "dev-01", State: gatehouse.StatePending, Name: "gw-01",
		Fingerprint: "fp-dev-01", VerificationCode: "ABCD-EFGH"}
	diffStruct(t, "DeviceStatus", *got, want)

	mustUpdate(t, db, "dev-01", store.DeviceUpdate{State: ptr(gatehouse.StateProvisioned), AckedAt: ptr(at(time.Minute))})
	got, err = db.DeviceStatus(t.Context(), "fp-dev-01")
	if err != nil {
		t.Fatalf("DeviceStatus: %v", err)
	}
	if got.State != gatehouse.StateProvisioned || !got.Acked {
		t.Errorf("after ack: state %s, acked %v; want provisioned, acked", got.State, got.Acked)
	}
}

func testCheckinRefusals(t *testing.T, db *store.DB, _ *clock) {
	_, err := db.DeviceStatus(t.Context(), "fp-unknown")
	wantCode(t, err, gatehouse.ENOTFOUND)
	_, err = db.Checkin(t.Context(), "fp-unknown", "192.0.2.1", time.Minute)
	wantCode(t, err, gatehouse.ENOTFOUND)

	gw, cand := newDevice("dev-01"), newDevice("dev-02")
	mustCreate(t, db, gw, cand)
	inTx(t, db, func(tx *store.Tx) error { return tx.AdoptKey(t.Context(), "dev-01", cand) })
	_, err = db.DeviceStatus(t.Context(), "fp-dev-01")
	wantCode(t, err, gatehouse.EFORBIDDEN)
	_, err = db.Checkin(t.Context(), "fp-dev-01", "192.0.2.1", time.Minute)
	wantCode(t, err, gatehouse.EFORBIDDEN)
	// The adopted key now reads the gateway it moved to.
	got, err := db.DeviceStatus(t.Context(), "fp-dev-02")
	if err != nil || got.DeviceID != "dev-01" || got.Fingerprint != "fp-dev-02" {
		t.Errorf("adopted key: %+v, %v; want dev-01 with fingerprint fp-dev-02", got, err)
	}
}

func testCheckinTouch(t *testing.T, db *store.DB, clk *clock) {
	mustCreate(t, db, newDevice("dev-01")) // seen at t0 from 192.0.2.1:4000
	checkin := func(addr string) {
		t.Helper()
		if _, err := db.Checkin(t.Context(), "fp-dev-01", addr, time.Minute); err != nil {
			t.Fatalf("Checkin: %v", err)
		}
	}
	seen := func(wantAt time.Time, wantAddr string) {
		t.Helper()
		d := mustDevice(t, db, "dev-01")
		if !d.LastSeen.Equal(wantAt) || d.SourceAddr != wantAddr {
			t.Errorf("seen %v from %q, want %v from %q", d.LastSeen, d.SourceAddr, wantAt, wantAddr)
		}
	}
	clk.Set(t0.Add(30 * time.Second))
	checkin("192.0.2.1:4000")
	seen(at(0), "192.0.2.1:4000") // within the interval, from the same address
	checkin("192.0.2.9")
	seen(at(30*time.Second), "192.0.2.9") // another address
	clk.Set(t0.Add(91 * time.Second))
	checkin("192.0.2.9")
	seen(at(91*time.Second), "192.0.2.9") // the interval passed
	if _, err := db.DeviceStatus(t.Context(), "fp-dev-01"); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(time.Hour))
	seen(at(91*time.Second), "192.0.2.9") // DeviceStatus only reads
}
