package provision_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse"
)

// TestWaitNotesSeen: the one read a wait makes also notes the gateway seen,
// from a new address at once and from the same one only once SeenEvery
// (30 s by default) has passed.
func TestWaitNotesSeen(t *testing.T) {
	var clock atomic.Int64 // the database's time, set before the service reads it
	at := func() time.Time { return time.Unix(0, clock.Load()).UTC().Truncate(time.Microsecond) }
	clock.Store(time.Now().UnixNano())
	db := openDB(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	db.Now = at
	tb := &testBundle{db: db, svc: startService(t, db, fastConfig(apis{}))}
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID // seen from 192.0.2.7
	pass := func(d time.Duration) { clock.Add(int64(d)) }
	wait := func(addr string) {
		t.Helper()
		st, err := tb.svc.Wait(context.Background(), g.sig, "", addr, time.Second)
		if err != nil || st.State != string(gatehouse.StatePending) || st.DeviceID != id {
			t.Fatalf("Wait = %+v, %v; want the pending device %s at once", st, err, id)
		}
	}
	seen := func() *gatehouse.Device {
		t.Helper()
		d, err := tb.svc.Device(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	wait("198.51.100.4")
	first := seen()
	if first.SourceAddr != "198.51.100.4" || !first.LastSeen.Equal(at()) {
		t.Fatalf("after a wait from a new address: seen %v from %s", first.LastSeen, first.SourceAddr)
	}
	pass(10 * time.Second)
	wait("198.51.100.4")
	if d := seen(); !d.LastSeen.Equal(first.LastSeen) {
		t.Errorf("a re-poll within SeenEvery wrote last seen %v (was %v)", d.LastSeen, first.LastSeen)
	}
	pass(30 * time.Second)
	wait("198.51.100.4")
	if d := seen(); !d.LastSeen.Equal(at()) {
		t.Errorf("a re-poll after SeenEvery: last seen %v, want %v", d.LastSeen, at())
	}
}
