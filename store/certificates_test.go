package store_test

import (
	"testing"
	"time"

	"gatehouse"
	"gatehouse/store"
)

func testCertificates(t *testing.T, db *store.DB, clk *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	cert := func(serial, id string, life time.Duration) gatehouse.DeviceCert {
		return gatehouse.DeviceCert{Serial: serial, DeviceID: id, Fingerprint: "fp-" + id,
			Origin: gatehouse.CertFromProvision, NotBefore: at(0), NotAfter: at(life)}
	}
	inTx(t, db, func(tx *store.Tx) error {
		for _, c := range []gatehouse.DeviceCert{
			cert("aa:01", "dev-01", 30*24*time.Hour), cert("aa:02", "dev-02", 10*24*time.Hour),
		} {
			if err := tx.AddCertificate(t.Context(), c); err != nil {
				return err
			}
		}
		return nil
	})
	clk.Set(t0.Add(time.Hour))
	inTx(t, db, func(tx *store.Tx) error {
		// A repeated step adds the same serial again: nothing changes.
		if err := tx.AddCertificate(t.Context(), cert("aa:01", "dev-01", time.Hour)); err != nil {
			return err
		}
		if err := tx.AddCertificate(t.Context(), cert("aa:03", "dev-01", 60*24*time.Hour)); err != nil {
			return err
		}
		return tx.MarkCertRevoked(t.Context(), "aa:01")
	})
	var mine, soon []gatehouse.DeviceCert
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		if mine, err = tx.Certificates(t.Context(), "dev-01"); err != nil {
			return err
		}
		soon, err = tx.CertsExpiring(t.Context(), at(40*24*time.Hour), 10)
		return err
	})
	if len(mine) != 2 || mine[0].Serial != "aa:03" || mine[1].Serial != "aa:01" {
		t.Fatalf("Certificates(dev-01) = %+v, want aa:03 then aa:01", mine)
	}
	if !mine[1].NotAfter.Equal(at(30*24*time.Hour)) || mine[1].RevokedAt == nil || !mine[1].RevokedAt.Equal(at(time.Hour)) {
		t.Errorf("aa:01 = %+v: want its first NotAfter kept and revoked at t0+1h", mine[1])
	}
	if mine[0].RevokedAt != nil || !mine[0].IssuedAt.Equal(at(time.Hour)) {
		t.Errorf("aa:03 = %+v: want live, issued at t0+1h", mine[0])
	}
	if len(soon) != 1 || soon[0].Serial != "aa:02" {
		t.Errorf("CertsExpiring = %+v, want only aa:02 (aa:01 is revoked, aa:03 expires later)", soon)
	}
}
