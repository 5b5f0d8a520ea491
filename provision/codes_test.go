package provision_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/store"
)

// Codes are keyed with the database's own secret: two services on one
// database agree, another database gives other codes, and nothing computes
// them from the key alone.
func TestVerificationCodeKeyedPerDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a := startService(t, openDB(t, path), fastConfig(apis{}))
	b := startService(t, openDB(t, path), fastConfig(apis{}))
	other := startService(t, openDB(t, filepath.Join(t.TempDir(), "other.db")), fastConfig(apis{}))
	differ := false
	for range 3 {
		g := newGateway(t)
		st := enrollIn(t, a, g)
		if again := enrollIn(t, b, g); again.VerificationCode != st.VerificationCode {
			t.Errorf("two services on one database disagree: %s vs %s", st.VerificationCode, again.VerificationCode)
		}
		if enrollIn(t, other, g).VerificationCode != st.VerificationCode {
			differ = true
		}
	}
	if !differ {
		t.Error("three keys got the same codes from two databases: codes are not keyed per server")
	}
}

func enrollIn(t *testing.T, svc *provision.Service, g *gateway) *protocol.Status {
	t.Helper()
	st, err := svc.Enroll(context.Background(), g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t)}, "192.0.2.7")
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return st
}

// A second pending gateway claiming a MAC flags both; one that is no
// longer pending flags nothing.
func TestDuplicateMACFlagged(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	real, fake, stranger := newGateway(t), newGateway(t), newGateway(t)
	fake.mac = real.mac
	realID, fakeID := tb.enroll(t, real).DeviceID, tb.enroll(t, fake).DeviceID
	strangerID := tb.enroll(t, stranger).DeviceID
	ds := listPending(t, tb.svc)
	if got := ds[realID].SameMAC; !slices.Equal(got, []string{fakeID}) {
		t.Errorf("real gateway same_mac = %v, want [%s]", got, fakeID)
	}
	if got := ds[fakeID].SameMAC; !slices.Equal(got, []string{realID}) {
		t.Errorf("second gateway same_mac = %v, want [%s]", got, realID)
	}
	if d := ds[strangerID]; d.SameMAC != nil || d.SameCode != nil {
		t.Errorf("a gateway with its own MAC is flagged: %v %v", d.SameMAC, d.SameCode)
	}
	if _, err := tb.svc.Dismiss(context.Background(), "token:alice", fakeID); err != nil {
		t.Fatal(err)
	}
	d, err := tb.svc.Device(context.Background(), realID)
	if err != nil || d.SameMAC != nil {
		t.Errorf("after dismissing the other, same_mac = %v (%v)", d.SameMAC, err)
	}
}

// Pending gateways showing one code are flagged, by the code stored at
// enrollment; codes missing from older rows are stored at start.
func TestDuplicateCodeFlagged(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	db := openDB(t, path)
	seeds := []store.Seed{seed("dup00000000a", "02:00:00:00:ff:01", "123456"),
		seed("dup00000000b", "02:00:00:00:ff:02", "123456"), seed("dup00000000c", "02:00:00:00:ff:03", "")}
	if err := db.SeedPending(context.Background(), seeds); err != nil {
		t.Fatal(err)
	}
	svc := startService(t, db, fastConfig(apis{}))
	ds := listPending(t, svc)
	if got := ds["dup00000000a"].SameCode; !slices.Equal(got, []string{"dup00000000b"}) {
		t.Errorf("same_code = %v, want [dup00000000b]", got)
	}
	if got := ds["dup00000000c"]; len(got.VerificationCode) != 6 || got.SameCode != nil {
		t.Errorf("uncoded seed: code %q, same_code %v", got.VerificationCode, got.SameCode)
	}
	if ds["dup00000000a"].SameMAC != nil {
		t.Errorf("same_mac = %v for distinct MACs", ds["dup00000000a"].SameMAC)
	}
}

func seed(id, mac, code string) store.Seed {
	fp := protocol.Fingerprint([]byte(id))
	return store.Seed{
		Device: gatehouse.Device{ID: id, MAC: mac, Fingerprint: fp, VerificationCode: code},
		Key:    gatehouse.DeviceKey{Fingerprint: fp, KeyType: protocol.KeyEd25519, PublicKey: []byte(id), SealKey: []byte(id)},
	}
}

func listPending(t *testing.T, svc *provision.Service) map[string]*gatehouse.Device {
	t.Helper()
	l, err := svc.ListDevices(context.Background(), provision.ListFilter{State: gatehouse.StatePending})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*gatehouse.Device{}
	for _, d := range l.Devices {
		out[d.ID] = d
	}
	return out
}
