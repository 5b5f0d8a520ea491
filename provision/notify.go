package provision

import "sync"

// Notifier wakes long polls when a device changes. LocalNotifier works
// inside one process; replicas on PostgreSQL use replicaNotifier, which also
// tells the others through the database.
type Notifier interface {
	// Subscribe returns a channel that receives after each Publish for id,
	// and a function that ends the subscription.
	Subscribe(id string) (<-chan struct{}, func())
	// Publish wakes every subscriber of id, and every watcher.
	Publish(id string)
	// WatchAll returns a Watcher told of every device that changes, and a
	// function that ends the watch.
	WatchAll() (*Watcher, func())
}

// maxPending bounds how many changed ids a watcher holds; past it the
// watcher reports that everything may have changed.
const maxPending = 1000

// Watcher collects the ids of changed devices for one live view.
type Watcher struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	all  bool
	wake chan struct{}
}

func newWatcher() *Watcher {
	return &Watcher{ids: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// Wake receives after a change, however many there were since the last Take.
func (w *Watcher) Wake() <-chan struct{} { return w.wake }

// Take returns the ids changed since the last Take, or all=true when there
// were too many to list.
func (w *Watcher) Take() (ids []string, all bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id := range w.ids {
		ids = append(ids, id)
	}
	all = w.all
	w.ids, w.all = map[string]struct{}{}, false
	return ids, all
}

func (w *Watcher) add(id string) {
	w.mu.Lock()
	if len(w.ids) < maxPending {
		w.ids[id] = struct{}{}
	} else {
		w.all = true
	}
	w.mu.Unlock()
	nudge(w.wake)
}

// addAll tells the watcher that anything may have changed.
func (w *Watcher) addAll() {
	w.mu.Lock()
	w.all = true
	w.mu.Unlock()
	nudge(w.wake)
}

// nudge signals ch without waiting: its buffer of one already holds a
// signal not yet received, which says the same.
func nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// LocalNotifier is a Notifier for a single process.
type LocalNotifier struct {
	mu       sync.Mutex
	subs     map[string]map[chan struct{}]struct{}
	watchers map[*Watcher]struct{}
}

// NewLocalNotifier returns an empty LocalNotifier.
func NewLocalNotifier() *LocalNotifier {
	return &LocalNotifier{subs: make(map[string]map[chan struct{}]struct{}), watchers: map[*Watcher]struct{}{}}
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
		nudge(ch)
	}
	for w := range n.watchers {
		w.add(id)
	}
}

// wakeAll wakes every subscriber and tells every watcher that anything may
// have changed.
func (n *LocalNotifier) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, subs := range n.subs {
		for ch := range subs {
			nudge(ch)
		}
	}
	for w := range n.watchers {
		w.addAll()
	}
}

// WatchAll implements Notifier.
func (n *LocalNotifier) WatchAll() (*Watcher, func()) {
	w := newWatcher()
	n.mu.Lock()
	n.watchers[w] = struct{}{}
	n.mu.Unlock()
	return w, func() {
		n.mu.Lock()
		delete(n.watchers, w)
		n.mu.Unlock()
	}
}
