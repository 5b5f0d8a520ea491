package provision

import "sync"

// Notifier wakes long polls when a device changes. This one works inside one
// process; several replicas need one that listens to the database instead.
type Notifier interface {
	// Subscribe returns a channel that receives after each Publish for id,
	// and a function that ends the subscription.
	Subscribe(id string) (<-chan struct{}, func())
	// Publish wakes every subscriber of id.
	Publish(id string)
}

// LocalNotifier is a Notifier for a single process.
type LocalNotifier struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// NewLocalNotifier returns an empty LocalNotifier.
func NewLocalNotifier() *LocalNotifier {
	return &LocalNotifier{subs: make(map[string]map[chan struct{}]struct{})}
}

// Subscribe implements Notifier.
func (n *LocalNotifier) Subscribe(id string) (<-chan struct{}, func()) {
	// Buffered so Publish never blocks and a change between subscribing and
	// waiting is not lost.
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs[id] == nil {
		n.subs[id] = make(map[chan struct{}]struct{})
	}
	n.subs[id][ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs[id], ch)
		if len(n.subs[id]) == 0 {
			delete(n.subs, id)
		}
		n.mu.Unlock()
	}
}

// Publish implements Notifier.
func (n *LocalNotifier) Publish(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
