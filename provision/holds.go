package provision

import (
	"container/heap"
	"math/rand/v2"
	"sync"
	"time"
)

// holds bounds how many long polls one process keeps open. A held poll costs
// a connection (a file descriptor, of which a process has a few tens of
// thousands at most) and tens of KiB of memory, so a fleet of a hundred
// thousand waiting gateways cannot all be held. The polls kept are those of
// the gateways that began waiting in their current state most recently: a
// gateway that just enrolled, or was just approved, is the one an operator
// is looking at and must hear of its approval at once. When the set is full
// a newer waiter takes the place of the oldest, whose poll is answered with
// a time to ask again; a waiter older than every held one is answered so at
// once. Gateways turned away come back at a pace that keeps their re-polls
// near repollRate a second in all, however many they are.
type holds struct {
	max        int
	repollRate float64
	now        func() time.Time

	mu      sync.Mutex
	held    holdHeap
	waiting map[string]*waiter // by the fingerprint of the key it asks with
	swept   time.Time
}

// waiter is what the process remembers of a gateway between its polls: its
// device, the state it waits in, since when, and when it last asked.
type waiter struct {
	device    string
	state     string
	since     time.Time
	lastAsked time.Time
}

// hold is one held poll; evicted is closed when a newer waiter takes its
// place.
type hold struct {
	since   time.Time
	evicted chan struct{}
	index   int
}

// Bounds of the time a turned-away gateway is told to wait before asking
// again: often enough that an approval reaches it within minutes, rarely
// enough that a large fleet's re-polls do not crowd out real work.
const (
	minPollAfter = 10 * time.Second
	maxPollAfter = 10 * time.Minute
)

func newHolds(max int, repollRate float64, now func() time.Time) *holds {
	return &holds{max: max, repollRate: repollRate, now: now, waiting: map[string]*waiter{}}
}

// acquire notes that the gateway asking with key fp, device id, polls in
// state and returns its hold, or nil when it is to be turned away.
func (h *holds) acquire(fp, id, state string) *hold {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	h.sweep(now)
	w := h.waiting[fp]
	if w == nil || w.state != state || w.device != id {
		w = &waiter{device: id, state: state, since: now}
		h.waiting[fp] = w
	}
	w.lastAsked = now
	if h.held.Len() >= h.max {
		if h.max == 0 || !h.held[0].since.Before(w.since) {
			return nil
		}
		close(heap.Pop(&h.held).(*hold).evicted)
	}
	hd := &hold{since: w.since, evicted: make(chan struct{})}
	heap.Push(&h.held, hd)
	return hd
}

// deviceOf is the device the key fp belonged to when it last asked, or ""
// when it has not asked lately. A key's device changes only by a re-key, so
// what this says is to be checked against the status read after it.
func (h *holds) deviceOf(fp string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.waiting[fp]; w != nil {
		return w.device
	}
	return ""
}

// release gives a hold back once its poll is answered.
func (h *holds) release(hd *hold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hd.index >= 0 {
		heap.Remove(&h.held, hd.index)
	}
}

// pollAfter is how long a turned-away gateway should wait before asking
// again: the number turned away over the re-poll budget, jittered so that
// gateways turned away together do not come back together.
func (h *holds) pollAfter() time.Duration {
	h.mu.Lock()
	away := len(h.waiting) - h.held.Len()
	h.mu.Unlock()
	d := time.Duration(float64(max(away, 1)) / h.repollRate * float64(time.Second))
	d = min(max(d, minPollAfter), maxPollAfter)
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// PollAfter is how long a gateway turned away now should wait before
// asking again, for the server to tell one it is too busy to answer.
func (s *Service) PollAfter() time.Duration { return s.holds.pollAfter() }

// sweep forgets gateways that stopped asking (provisioned, switched off, or
// polling another replica), at most once a minute, so the memory of waiters
// follows the fleet that waits.
func (h *holds) sweep(now time.Time) {
	if now.Sub(h.swept) < time.Minute {
		return
	}
	h.swept = now
	for id, w := range h.waiting {
		if now.Sub(w.lastAsked) > 2*maxPollAfter {
			delete(h.waiting, id)
		}
	}
}

// counts is how many polls are held and how many gateways this process
// knows to be waiting, for metrics and tests.
func (h *holds) counts() (held, waiting int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held.Len(), len(h.waiting)
}

// holdHeap is a min-heap of holds by since: the root is evicted first.
type holdHeap []*hold

func (q holdHeap) Len() int           { return len(q) }
func (q holdHeap) Less(i, j int) bool { return q[i].since.Before(q[j].since) }
func (q holdHeap) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *holdHeap) Push(x any) {
	hd := x.(*hold)
	hd.index = len(*q)
	*q = append(*q, hd)
}

func (q *holdHeap) Pop() any {
	old := *q
	hd := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	hd.index = -1
	return hd
}
