package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
)

// No entry is served while a transaction commits, none filled by a read
// that began before a commit, and every one is forgotten after it.
func TestStatusCacheAroundCommits(t *testing.T) {
	var c statusCache
	e := cachedStatus{st: DeviceStatus{DeviceID: "dev-01", State: gatehouse.StatePending}}

	gen, ok := c.begin()
	if !ok {
		t.Fatal("an idle cache refused a read")
	}
	c.put("fp", e, gen)
	if _, hit := c.get("fp"); !hit {
		t.Fatal("a fresh entry was not served")
	}

	done := c.committingTx()
	if _, hit := c.get("fp"); hit {
		t.Error("an entry was served while a transaction committed")
	}
	if _, ok := c.begin(); ok {
		t.Error("a read during a commit may fill an entry")
	}
	done()
	if _, hit := c.get("fp"); hit {
		t.Error("an entry from before a commit was served after it")
	}

	// A read that began before a commit fills nothing after it.
	gen, _ = c.begin()
	c.committingTx()()
	c.put("fp", e, gen)
	if _, hit := c.get("fp"); hit {
		t.Error("a read from before a commit filled an entry")
	}

	// Another connection's commit: the data version moved.
	gen, _ = c.begin()
	c.put("fp", e, gen)
	c.otherWrites(c.dataVersion)
	if _, hit := c.get("fp"); !hit {
		t.Error("an unchanged data version forgot the entries")
	}
	c.otherWrites(c.dataVersion + 1)
	if _, hit := c.get("fp"); hit {
		t.Error("a changed data version kept the entries")
	}
	gen, _ = c.begin()
	c.put("fp", e, gen)
	c.otherWrites(-1) // reading the version failed
	if _, hit := c.get("fp"); hit {
		t.Error("a failed version read kept the entries")
	}
}

// Once DB.SQL has handed out the pool, whatever it writes bypasses InTx,
// so nothing is cached any more.
func TestStatusCacheOffAfterRawSQL(t *testing.T) {
	t.Parallel()
	d, err := Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustCreateDevice(t, d, "dev-01")
	if _, err := d.Checkin(t.Context(), "fp-dev-01", "192.0.2.1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SQL().ExecContext(t.Context(), `UPDATE devices SET state = 'dismissed' WHERE id = 'dev-01'`); err != nil {
		t.Fatal(err)
	}
	st, err := d.Checkin(t.Context(), "fp-dev-01", "192.0.2.1", time.Minute)
	if err != nil || st.State != gatehouse.StateDismissed {
		t.Errorf("after a raw update: %+v, %v; want dismissed", st, err)
	}
}

// A check-in reads what a transaction committed just before it, in this
// process or, once a nonce batch has looked, in another on the same file.
func TestCheckinAfterCommits(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	a, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustCreateDevice(t, a, "dev-01")
	n := 0
	checkin := func(want gatehouse.State) {
		t.Helper()
		n++
		// As every device request does, its nonce first.
		if fresh, err := a.UseNonce(t.Context(), "fp-dev-01", fmt.Sprint("n", n), time.Now().Add(time.Hour)); err != nil || !fresh {
			t.Fatalf("UseNonce: %v, %v", fresh, err)
		}
		for range 2 { // the second may be served from memory
			st, err := a.Checkin(t.Context(), "fp-dev-01", "192.0.2.1", time.Minute)
			if err != nil || st.State != want {
				t.Fatalf("check-in %d: %+v, %v; want %s", n, st, err, want)
			}
		}
	}
	setState := func(db *DB, s gatehouse.State) {
		t.Helper()
		if err := db.InTx(t.Context(), func(tx *Tx) error {
			return tx.UpdateDevice(t.Context(), "dev-01", DeviceUpdate{State: &s})
		}); err != nil {
			t.Fatal(err)
		}
	}
	checkin(gatehouse.StatePending)
	setState(a, gatehouse.StateApproved)
	checkin(gatehouse.StateApproved)
	setState(b, gatehouse.StateProvisioning)
	checkin(gatehouse.StateProvisioning)
	setState(b, gatehouse.StateProvisioned)
	setState(a, gatehouse.StateFailed)
	checkin(gatehouse.StateFailed)
}

func mustCreateDevice(t *testing.T, d *DB, id string) {
	t.Helper()
	dev := &gatehouse.Device{ID: id, State: gatehouse.StatePending, MAC: "02:00:00:00:00:01",
		Fingerprint: "fp-" + id, SourceAddr: "192.0.2.1"}
	key := gatehouse.DeviceKey{Fingerprint: dev.Fingerprint, KeyType: "ed25519", PublicKey: []byte("pub-" + id), SealKey: []byte("seal-" + id)}
	if err := d.InTx(t.Context(), func(tx *Tx) error { return tx.CreateDevice(t.Context(), dev, key) }); err != nil {
		t.Fatal(err)
	}
}

// Batches of every size up to past a power of two are padded without a
// padding row counting: fresh uses fresh, replays refused.
func TestSQLiteNonceBatchSizes(t *testing.T) {
	t.Parallel()
	d, err := Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	exp := micros(time.Now().Add(time.Hour))
	for size := 1; size <= 9; size++ {
		var batch []*nonceUse
		for i := range size {
			batch = append(batch, &nonceUse{key: "fp", nonce: fmt.Sprintf("s%d-%d", size, i), expires: exp, done: make(chan struct{})})
		}
		// Every batch but the first repeats the last nonce of the one before.
		replays := 0
		if size > 1 {
			batch[0].nonce = fmt.Sprintf("s%d-%d", size-1, size-2)
			replays = 1
		}
		d.flushNonces(t.Context(), batch)
		fresh := 0
		for _, u := range batch {
			<-u.done
			if u.err != nil {
				t.Fatalf("batch of %d: %v", size, u.err)
			}
			if u.fresh {
				fresh++
			}
		}
		if fresh != size-replays {
			t.Errorf("batch of %d with %d replays: %d fresh", size, replays, fresh)
		}
	}
	// The largest batch, whose statement binds the most values.
	var batch []*nonceUse
	for i := range maxNonceBatch {
		batch = append(batch, &nonceUse{key: "fp", nonce: fmt.Sprintf("max-%d", i), expires: exp, done: make(chan struct{})})
	}
	d.flushNonces(t.Context(), batch)
	for _, u := range batch {
		if <-u.done; u.err != nil || !u.fresh {
			t.Fatalf("batch of %d: %v, %v", maxNonceBatch, u.fresh, u.err)
		}
	}
	var rows int
	if err := d.q.QueryRowContext(t.Context(), `SELECT count(*) FROM nonces`).Scan(&rows); err != nil || rows != 37+maxNonceBatch {
		t.Errorf("%d nonces stored (%v), want %d", rows, err, 37+maxNonceBatch)
	}
}
