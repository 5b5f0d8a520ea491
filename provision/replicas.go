package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"

	"gatehouse/store"
)

// changesChannel is the PostgreSQL channel replicas tell each other of
// changed devices on.
const changesChannel = "gatehouse_devices"

// everything in a message means "assume every device changed".
const everything = "*"

// replicaNotifier is the Notifier of a replica sharing a PostgreSQL
// database: local subscribers are woken at once, as on one process, and the
// change is broadcast so the other replicas wake theirs. A long poll held on
// one replica thus wakes when an operator acts on another.
type replicaNotifier struct {
	*LocalNotifier
	db   *store.DB
	log  *slog.Logger
	self string // tells our own broadcasts apart when they come back
	out  chan string
}

func newReplicaNotifier(db *store.DB, log *slog.Logger) *replicaNotifier {
	b := make([]byte, 8)
	rand.Read(b)
	return &replicaNotifier{LocalNotifier: NewLocalNotifier(), db: db, log: log,
		self: hex.EncodeToString(b), out: make(chan string, 4096)}
}

// Publish implements Notifier. It never waits on the database: a change
// that finds the queue full is sent as "everything changed" instead.
func (n *replicaNotifier) Publish(id string) {
	n.LocalNotifier.Publish(id)
	select {
	case n.out <- id:
	default:
		select {
		case n.out <- everything:
		default:
		}
	}
}

// run listens and sends until ctx ends.
func (n *replicaNotifier) run(ctx context.Context) {
	go n.send(ctx)
	connected := false
	err := n.db.Listen(ctx, changesChannel, func() {
		// After a reconnect, what was sent meanwhile is lost: wake
		// everyone to look again.
		if connected {
			n.log.Info("listening to other replicas again")
			n.wakeAll()
		}
		connected = true
	}, n.receive)
	if err != nil && ctx.Err() == nil {
		n.log.Error("listening to other replicas stopped", "err", err)
	}
}

// send batches queued ids into NOTIFY payloads (PostgreSQL takes under
// 8,000 bytes each).
func (n *replicaNotifier) send(ctx context.Context) {
	for {
		var id string
		select {
		case id = <-n.out:
		case <-ctx.Done():
			return
		}
		ids := []string{id}
		for size := len(id); size < 7000 && len(n.out) > 0; {
			id = <-n.out
			ids, size = append(ids, id), size+len(id)+1
		}
		if err := n.db.Broadcast(ctx, changesChannel, n.self+" "+strings.Join(ids, " ")); err != nil && ctx.Err() == nil {
			n.log.Warn("telling other replicas of a change failed; their long polls wake at their timeout", "err", err)
		}
	}
}

func (n *replicaNotifier) receive(payload string) {
	from, ids, _ := strings.Cut(payload, " ")
	if from == n.self {
		return
	}
	for _, id := range strings.Fields(ids) {
		if id == everything {
			n.wakeAll()
			return
		}
		n.LocalNotifier.Publish(id)
	}
}
