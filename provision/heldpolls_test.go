package provision_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse/protocol"
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
