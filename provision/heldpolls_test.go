package provision_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// With room for one held wait, the gateway that enrolled last is the one
// held: the earlier one's wait is answered at once with a time to ask
// again, and asking again does not take the place back.
func TestHeldPollsGoToTheNewestWaiter(t *testing.T) {
	t.Parallel()
	db := openDB(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	cfg := fastConfig(apis{})
	cfg.MaxHeldPolls, cfg.RepollRate = 1, 100
	svc := startService(t, db, cfg)
	ctx := context.Background()
	first, second := newGateway(t), newGateway(t)
	enrollIn(t, svc, first)

	answered := make(chan *protocol.Status, 1)
	go func() {
		st, err := svc.Wait(ctx, first.sig, "pending", "192.0.2.7", time.Hour)
		if err != nil {
			t.Errorf("first wait: %v", err)
		}
		answered <- st
	}()
	if !eventually(waitTimeout, func() bool { held, _ := svc.HeldPolls(); return held == 1 }) {
		t.Fatal("the first gateway's wait is not held")
	}

	enrollIn(t, svc, second)
	secondDone := make(chan error, 1)
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, err := svc.Wait(waitCtx, second.sig, "pending", "192.0.2.8", time.Hour)
		secondDone <- err
	}()
	var st *protocol.Status
	select {
	case st = <-answered:
	case <-time.After(waitTimeout):
		t.Fatal("the first wait was not answered when a newer waiter needed its place")
	}
	if st == nil || st.State != "pending" || st.PollAfter < 9 || st.PollAfter > 11 {
		t.Fatalf("evicted wait answered %+v; want pending with poll_after about 10 s", st)
	}

	// Asking again, the first gateway is still the older waiter.
	again, err := svc.Wait(ctx, first.sig, "pending", "192.0.2.7", time.Hour)
	if err != nil || again.PollAfter == 0 {
		t.Fatalf("the older gateway asking again: %+v, %v; want an answer at once with poll_after", again, err)
	}
	if held, waiting := svc.HeldPolls(); held != 1 || waiting != 2 {
		t.Errorf("HeldPolls = %d held of %d waiting, want 1 of 2", held, waiting)
	}
	// What a busy server tells a device is the same pace.
	if d := svc.PollAfter(); d < 9*time.Second || d > 11*time.Second {
		t.Errorf("PollAfter = %v; want about 10 s", d)
	}
	select {
	case err := <-secondDone:
		t.Fatalf("the newest gateway's wait ended early: %v", err)
	default:
	}
	cancel()
	<-secondDone
}

// A wait subscribes to the device its key last waited as before reading
// its status. A re-key moves the key to the gateway it re-keys, so the
// next waits must follow it there: each is held for an hour here, and only
// a change of the gateway ends it.
func TestHeldWaitFollowsARekeyedKey(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.db = openDB(t, filepath.Join(t.TempDir(), "r.db"))
	tb.svc = startService(t, tb.db, followConfig(tb))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, fresh, id, cand := rekeyed(t, tb, "gw-moved")
	// Held while pending, as the candidate: the server now knows the key
	// as the candidate's.
	if st, err := tb.svc.Wait(ctx, fresh.sig, "pending", "192.0.2.7", time.Nanosecond); err != nil || st.DeviceID != cand {
		t.Fatalf("candidate's wait: %+v, %v; want the candidate %s", st, err, cand)
	}
	if _, err := tb.svc.Approve(ctx, "token:alice", cand, provision.Approval{}); err != nil {
		t.Fatal(err)
	}
	for seen := "pending"; seen != string(gatehouse.StateConfigured); {
		st, err := tb.svc.Wait(ctx, fresh.sig, seen, "192.0.2.7", time.Hour)
		if err != nil {
			t.Fatalf("waiting after %q: %v (a wait not woken by the gateway it now belongs to)", seen, err)
		}
		if st.DeviceID != id {
			t.Fatalf("the re-keyed key waits as %s, want the gateway %s", st.DeviceID, id)
		}
		seen = st.State
		if st.Bundle != nil && tb.svc.Ack(ctx, fresh.sig) != nil {
			t.Fatal("ack failed")
		}
		if seen == string(gatehouse.StateProvisioned) {
			tb.register(t, "gw-moved", "hub-a.azure-devices.net")
		}
	}
}
