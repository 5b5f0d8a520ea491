package provision_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/internal/logtest"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/store"
)

// testClock is a settable clock for the database.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects a service's log lines.
type logBuffer struct{ logtest.Buffer }

// removed adds up the counts of the "removed pending enrollments" lines.
func (b *logBuffer) removed() int {
	total := 0
	for _, line := range strings.Split(b.String(), "\n") {
		if !strings.Contains(line, "removed pending enrollments") {
			continue
		}
		var n int
		if _, after, ok := strings.Cut(line, " count="); ok {
			fmt.Sscanf(after, "%d", &n)
		}
		total += n
	}
	return total
}

func (b *logBuffer) count(s string) int { return strings.Count(b.String(), s) }

// clocked is a service with no backends (approval provisions at once) over
// a database whose clock the test moves, logging into logs.
type clocked struct {
	*testBundle
	clock *testClock
	logs  *logBuffer
}

// setupClocked opens the database with its clock at start and starts the
// service with cfg; seed, if set, runs on the database before the service
// starts.
func setupClocked(t *testing.T, cfg provision.Config, seed func(db *store.DB, clock *testClock)) *clocked {
	t.Helper()
	c := &clocked{clock: &testClock{now: time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)}, logs: &logBuffer{}}
	db := openDB(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	db.Now = c.clock.Now
	if seed != nil {
		seed(db, c.clock)
	}
	tc := fastConfig(apis{})
	cfg.RetryBase, cfg.RetryMax, cfg.PollInterval = tc.RetryBase, tc.RetryMax, tc.PollInterval
	cfg.JobTimeout, cfg.RescueAfter = tc.JobTimeout, tc.RescueAfter
	cfg.Logger = slog.New(slog.NewTextHandler(c.logs, nil))
	tc.Config = cfg
	c.testBundle = &testBundle{db: db, svc: startService(t, db, tc)}
	return c
}

func (c *clocked) pendingCount(t *testing.T) int {
	t.Helper()
	l, err := c.svc.ListDevices(context.Background(), provision.ListFilter{State: gatehouse.StatePending})
	if err != nil {
		t.Fatal(err)
	}
	return l.Total
}

func (c *clocked) approve(t *testing.T, id, name string) {
	t.Helper()
	if _, err := c.svc.Approve(context.Background(), "token:alice", id, provision.Approval{Name: name}); err != nil {
		t.Fatalf("approve %s: %v", id, err)
	}
}

func TestPendingCapRefusesNewKeysOnly(t *testing.T) {
	t.Parallel()
	c := setupClocked(t, provision.Config{PendingCap: 3}, nil)
	ctx := context.Background()
	gws := []*gateway{newGateway(t), newGateway(t), newGateway(t)}
	ids := make([]string, len(gws))
	for i, g := range gws {
		// Each from its own address: the cap's last place is its reserve.
		ids[i] = c.enrollFrom(t, g, fmt.Sprintf("192.0.2.%d", 20+i)).DeviceID
	}

	// The queue is full: a new key is refused, with a hint when to retry,
	// and nothing is stored; the warning is logged once, not per refusal.
	for range 3 {
		stranger := newGateway(t)
		_, err := c.svc.Enroll(ctx, stranger.sig, protocol.EnrollRequest{MAC: stranger.mac, SealKey: stranger.sealKey(t)}, "192.0.2.9")
		wantCode(t, err, gatehouse.EUNAVAILABLE)
		if !strings.Contains(gatehouse.ErrorMessage(err), "pending queue is full") || gatehouse.ErrorRetryAfter(err) <= 0 {
			t.Fatalf("refusal = %q, retry after %v; want it to say the queue is full and when to retry",
				gatehouse.ErrorMessage(err), gatehouse.ErrorRetryAfter(err))
		}
	}
	if n := c.pendingCount(t); n != 3 {
		t.Fatalf("%d pending after refusals, want 3", n)
	}
	if n := c.logs.count("pending queue full"); n != 1 {
		t.Errorf("the queue-full warning was logged %d times, want once", n)
	}
	l, err := c.svc.ListDevices(ctx, provision.ListFilter{Search: gws[0].mac})
	if err != nil || l.Total != 1 || l.PendingTotal != 3 || l.PendingCap != 3 {
		t.Fatalf("filtered list = %+v, %v; want 1 match and pending 3 of cap 3", l, err)
	}

	// Known keys keep working while it is full: re-enroll and wait.
	if st := c.enroll(t, gws[1]); st.DeviceID != ids[1] || st.State != "pending" {
		t.Fatalf("re-enrolling a known key while full: %+v", st)
	}
	if st, err := c.svc.Wait(ctx, gws[1].sig, "", "192.0.2.7", 0); err != nil || st.State != "pending" {
		t.Fatalf("wait of a known key while full: %+v, %v", st, err)
	}

	// An approval makes room for one; the next stranger fills it again.
	c.approve(t, ids[0], "gw-01")
	c.enrollFrom(t, newGateway(t), "192.0.2.30")
	stranger := newGateway(t)
	_, err = c.svc.Enroll(ctx, stranger.sig, protocol.EnrollRequest{MAC: stranger.mac, SealKey: stranger.sealKey(t)}, "192.0.2.9")
	wantCode(t, err, gatehouse.EUNAVAILABLE)

	// The approved gateway gets its bundle and acknowledges it, full queue or not.
	st := c.waitFor(t, gws[0], gatehouse.StateProvisioned)
	if st.Bundle == nil {
		t.Fatalf("provisioned without a bundle: %+v", st)
	}
	if err := c.svc.Ack(ctx, gws[0].sig); err != nil {
		t.Fatalf("ack while the queue is full: %v", err)
	}
}

// enrollFrom enrolls g as if from addr.
func (c *clocked) enrollFrom(t *testing.T, g *gateway, addr string) *protocol.Status {
	t.Helper()
	st, err := c.svc.Enroll(context.Background(), g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t)}, addr)
	if err != nil {
		t.Fatalf("enroll from %s: %v", addr, err)
	}
	return st
}

// refusedFrom enrolls a new key from addr and wants it refused with a
// message saying want, and when to retry.
func (c *clocked) refusedFrom(t *testing.T, addr, want string) {
	t.Helper()
	g := newGateway(t)
	_, err := c.svc.Enroll(context.Background(), g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t)}, addr)
	wantCode(t, err, gatehouse.EUNAVAILABLE)
	if msg := gatehouse.ErrorMessage(err); !strings.Contains(msg, want) || gatehouse.ErrorRetryAfter(err) <= 0 {
		t.Fatalf("refusal from %s = %q, retry after %v; want it to say %q and when to retry",
			addr, msg, gatehouse.ErrorRetryAfter(err), want)
	}
}

func TestPendingReserveKeepsPlacesForNewAddresses(t *testing.T) {
	t.Parallel()
	// A cap of 20 keeps its last 2 places for addresses with none waiting.
	c := setupClocked(t, provision.Config{PendingCap: 20}, nil)
	ctx := context.Background()
	const flood = "192.0.2.7"
	first := newGateway(t)
	c.enrollFrom(t, first, flood)
	for range 17 {
		c.enrollFrom(t, newGateway(t), flood)
	}

	// At cap - reserve the flooding address is refused, saying why...
	c.refusedFrom(t, flood, "the pending queue is nearly full (18 of 20); its last 2 places are kept for gateways from addresses with none waiting, and "+flood+" already has one waiting")
	// ...while a gateway from an address with none waiting is let in, once.
	fresh := c.enrollFrom(t, newGateway(t), "198.51.100.4")
	if fresh.State != "pending" {
		t.Fatalf("new address in the reserve: %+v", fresh)
	}
	c.refusedFrom(t, "198.51.100.4", "198.51.100.4 already has one waiting")
	// IPv6 compares the stored address as it is.
	c.enrollFrom(t, newGateway(t), "2001:db8::1")

	// Full: every new key is refused, from any address.
	for _, addr := range []string{flood, "198.51.100.4", "198.51.100.5", "2001:db8::2"} {
		c.refusedFrom(t, addr, "the pending queue is full (20 gateways waiting")
	}
	if n := c.pendingCount(t); n != 20 {
		t.Fatalf("%d pending after refusals, want 20: a refusal must store nothing", n)
	}

	// Known keys keep working at the cap, from their address or another.
	for _, addr := range []string{flood, "203.0.113.8"} {
		if st := c.enrollFrom(t, first, addr); st.State != "pending" {
			t.Fatalf("re-enrolling a known key from %s while full: %+v", addr, st)
		}
	}
	if st, err := c.svc.Wait(ctx, first.sig, "", flood, 0); err != nil || st.State != "pending" {
		t.Fatalf("wait of a known key while full: %+v, %v", st, err)
	}

	// Dismissing two makes the queue 18 again, in the reserve: the
	// address whose gateway was dismissed has none waiting and may enroll.
	l, err := c.svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StatePending, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	dismissed := 0
	for _, d := range l.Devices {
		if d.SourceAddr == "198.51.100.4" || d.SourceAddr == "2001:db8::1" {
			if _, err := c.svc.Dismiss(ctx, "token:alice", d.ID); err != nil {
				t.Fatal(err)
			}
			dismissed++
		}
	}
	if dismissed != 2 {
		t.Fatalf("found %d gateways from the reserve's addresses, want 2", dismissed)
	}
	c.refusedFrom(t, flood, "nearly full (18 of 20)")
	c.enrollFrom(t, newGateway(t), "198.51.100.4")
}

func TestPendingCapCountsAcrossRecounts(t *testing.T) {
	t.Parallel()
	// Seeded rows are invisible to the service until it counts; its first
	// count must see them and refuse.
	seeded := make([]store.Seed, 5)
	for i := range seeded {
		g := newGateway(t)
		seeded[i] = store.Seed{
			Device: gatehouse.Device{ID: "seed-" + g.sig.Fingerprint[:8], MAC: g.mac, Fingerprint: g.sig.Fingerprint},
			Key:    gatehouse.DeviceKey{Fingerprint: g.sig.Fingerprint, KeyType: g.sig.KeyType, PublicKey: g.sig.PublicKey, SealKey: g.sealKey(t)},
		}
	}
	c := setupClocked(t, provision.Config{PendingCap: 5}, func(db *store.DB, _ *testClock) {
		if err := db.SeedPending(context.Background(), seeded); err != nil {
			t.Fatal(err)
		}
	})
	g := newGateway(t)
	_, err := c.svc.Enroll(context.Background(), g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t)}, "192.0.2.9")
	wantCode(t, err, gatehouse.EUNAVAILABLE)
	// A dismissal makes room at once, without waiting for a recount.
	if _, err := c.svc.Dismiss(context.Background(), "token:alice", seeded[0].Device.ID); err != nil {
		t.Fatal(err)
	}
	c.enroll(t, g)
	if n := c.pendingCount(t); n != 5 {
		t.Fatalf("%d pending, want 5", n)
	}
}

func TestPendingConfigRefusesNegative(t *testing.T) {
	t.Parallel()
	db := openDB(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	for _, cfg := range []provision.Config{{PendingCap: -1}, {PendingExpiry: -time.Hour}} {
		if _, err := provision.New(db, cfg); err == nil {
			t.Errorf("New(%+v) accepted a negative bound", cfg)
		}
	}
}

func TestExpirePendingRemovesOnlyStalePending(t *testing.T) {
	t.Parallel()
	c := setupClocked(t, provision.Config{PendingExpiry: 7 * 24 * time.Hour}, nil)
	ctx := context.Background()
	// The hourly expiry also runs once at start; on a loaded machine that
	// run can come late, after the clock below has moved, and take the
	// stale gateway first. Let it finish before the clock moves.
	waitJobDone(t, c.db, "expire_pending")
	stale, returned, approved, dismissed, fresh := newGateway(t), newGateway(t), newGateway(t), newGateway(t), newGateway(t)
	staleID := c.enroll(t, stale).DeviceID
	c.enroll(t, returned)
	approvedID := c.enroll(t, approved).DeviceID
	dismissedID := c.enroll(t, dismissed).DeviceID
	c.approve(t, approvedID, "gw-01")
	if _, err := c.svc.Dismiss(ctx, "token:alice", dismissedID); err != nil {
		t.Fatal(err)
	}
	c.clock.Add(3 * 24 * time.Hour)
	c.enroll(t, returned) // heard from again: its clock restarts
	c.clock.Add(4*24*time.Hour - time.Minute)
	c.enroll(t, fresh)
	if n, err := c.svc.ExpirePending(ctx); err != nil || n != 0 {
		t.Fatalf("ExpirePending a minute early = %d, %v; want none", n, err)
	}

	c.clock.Add(2 * time.Minute)
	n, err := c.svc.ExpirePending(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ExpirePending = %d, %v; want the one stale pending gateway", n, err)
	}
	if _, err := c.svc.Device(ctx, staleID); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		t.Fatalf("stale device still there: %v", err)
	}
	if _, err := c.svc.Events(ctx, staleID); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		t.Fatalf("stale device's timeline still there: %v", err)
	}
	_, err = c.svc.Wait(ctx, stale.sig, "", "x", 0)
	wantCode(t, err, gatehouse.ENOTFOUND) // its key is gone
	// Its nonces are not looked for: keyed by expiry, they go when they
	// expire (store migration 0018), and they still refuse a replay.
	// Everything else stays, however long silent: the approved and the
	// dismissed gateway were enrolled as long ago as the stale one.
	for _, g := range []*gateway{returned, approved, dismissed, fresh} {
		if _, err := c.svc.Wait(ctx, g.sig, "", "x", 0); err != nil {
			t.Errorf("gateway %s lost: %v", g.mac, err)
		}
	}
	if n := c.pendingCount(t); n != 2 {
		t.Errorf("%d pending left, want 2 (returned, fresh)", n)
	}
	// The gateway that was removed may come back, as a new enrollment.
	if st := c.enroll(t, stale); st.DeviceID == staleID || st.State != "pending" {
		t.Errorf("re-enrolled removed gateway: %+v", st)
	}
}

func TestExpirePendingJobRunsOnStart(t *testing.T) {
	t.Parallel()
	// Pending rows left from long ago are removed by the periodic job when
	// the service starts, in batches, with one log line per run.
	const n = 1200 // more than two batches
	seeds := make([]store.Seed, n)
	for i := range seeds {
		g := newGateway(t)
		seeds[i] = store.Seed{
			Device: gatehouse.Device{ID: fmt.Sprintf("old-%04d", i), MAC: g.mac, Fingerprint: g.sig.Fingerprint},
			Key:    gatehouse.DeviceKey{Fingerprint: g.sig.Fingerprint, KeyType: g.sig.KeyType, PublicKey: g.sig.PublicKey, SealKey: make([]byte, 32)},
		}
	}
	c := setupClocked(t, provision.Config{}, func(db *store.DB, clock *testClock) {
		if err := db.SeedPending(context.Background(), seeds); err != nil {
			t.Fatal(err)
		}
		clock.Add(provision.DefaultPendingExpiry + time.Hour)
	})
	if !eventually(waitTimeout, func() bool { return c.pendingCount(t) == 0 }) {
		t.Fatalf("%d stale pending gateways left after %v", c.pendingCount(t), waitTimeout)
	}
	// One line per run; a run cut short by its timeout on a loaded machine
	// logs what it removed, and the next run the rest.
	if !eventually(waitTimeout, func() bool { return c.logs.removed() == n }) {
		t.Fatalf("the log says %d were removed, want %d", c.logs.removed(), n)
	}
}

// waitJobDone waits until a job of kind has completed at least once.
func waitJobDone(t *testing.T, db *store.DB, kind string) {
	t.Helper()
	done := eventually(waitTimeout, func() bool {
		var n int
		err := db.SQL().QueryRowContext(context.Background(),
			`SELECT count(*) FROM river_job WHERE kind = ? AND state = 'completed'`, kind).Scan(&n)
		return err == nil && n > 0
	})
	if !done {
		t.Fatalf("no %s job completed within %v", kind, waitTimeout)
	}
}
