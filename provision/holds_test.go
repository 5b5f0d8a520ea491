package provision

import (
	"testing"
	"time"
)

// fakeTime is a clock the test moves by hand.
type fakeTime struct{ t time.Time }

func (c *fakeTime) now() time.Time      { return c.t }
func (c *fakeTime) add(d time.Duration) { c.t = c.t.Add(d) }

func evicted(hd *hold) bool {
	select {
	case <-hd.evicted:
		return true
	default:
		return false
	}
}

func TestHoldsKeepTheNewestWaiters(t *testing.T) {
	clock := &fakeTime{t: time.Unix(1_800_000_000, 0)}
	h := newHolds(2, 10, clock.now)
	a := h.acquire("a", "a", "pending")
	clock.add(time.Second)
	b := h.acquire("b", "b", "pending")
	if a == nil || b == nil {
		t.Fatal("the first two waiters were turned away with room for two")
	}
	clock.add(time.Second)
	c := h.acquire("c", "c", "pending")
	if c == nil || !evicted(a) || evicted(b) {
		t.Fatalf("a newer waiter should take the oldest one's place: c held %v, a evicted %v, b evicted %v", c != nil, evicted(a), evicted(b))
	}
	h.release(a) // the evicted poll answers and gives its hold back: a no-op
	if held, _ := h.counts(); held != 2 {
		t.Fatalf("%d held after releasing an evicted hold, want 2", held)
	}

	// a asks again, still pending since it first asked: older than every
	// held waiter, so it is turned away and evicts nobody.
	clock.add(time.Second)
	if h.acquire("a", "a", "pending") != nil || evicted(b) || evicted(c) {
		t.Fatal("an older waiter took the place of a newer one")
	}
	// Approved, a has begun waiting anew: the newest of all.
	if a2 := h.acquire("a", "a", "approved"); a2 == nil || !evicted(b) {
		t.Fatal("a gateway that changed state is not held ahead of older waiters")
	}
	h.release(c)
	if held, waiting := h.counts(); held != 1 || waiting != 3 {
		t.Errorf("counts = %d held, %d waiting; want 1 and 3", held, waiting)
	}
}

func TestHoldsNoneHeld(t *testing.T) {
	h := newHolds(0, 10, time.Now)
	if h.acquire("a", "a", "pending") != nil {
		t.Fatal("a wait was held by a set of size 0")
	}
}

func TestPollAfterFollowsTheTurnedAway(t *testing.T) {
	clock := &fakeTime{t: time.Unix(1_800_000_000, 0)}
	h := newHolds(10, 100, clock.now)
	if d := h.pollAfter(); d < 9*time.Second || d > 11*time.Second {
		t.Errorf("with nobody turned away poll_after is %v, want about the 10 s floor", d)
	}
	for i := range 5010 {
		k := string(rune('a'+i%26)) + time.Duration(i).String()
		h.acquire(k, k, "pending")
	}
	// 5,000 turned away at 100 re-polls a second: about 50 s, ±10 %.
	if d := h.pollAfter(); d < 45*time.Second || d > 55*time.Second {
		t.Errorf("with 5,000 turned away at 100/s poll_after is %v, want about 50 s", d)
	}
	for i := range 200000 {
		k := "x" + time.Duration(i).String()
		h.acquire(k, k, "pending")
	}
	if d := h.pollAfter(); d > 11*time.Minute {
		t.Errorf("poll_after %v passes its 10 min ceiling", d)
	}
}

func TestHoldsForgetGatewaysThatStoppedAsking(t *testing.T) {
	clock := &fakeTime{t: time.Unix(1_800_000_000, 0)}
	h := newHolds(1, 10, clock.now)
	h.release(h.acquire("gone", "gone", "pending"))
	clock.add(2*maxPollAfter + 2*time.Minute)
	h.acquire("here", "here", "pending")
	if _, waiting := h.counts(); waiting != 1 {
		t.Errorf("%d gateways remembered, want only the one still asking", waiting)
	}
}
