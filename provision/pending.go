package provision

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/store"
)

// Bounds of the pending queue, so a flood of bogus enrollments can neither
// grow the database without end nor bury real gateways for ever.
const (
	DefaultPendingCap    = 10_000
	DefaultPendingExpiry = 7 * 24 * time.Hour
)

// pendingRetryAfter is what a gateway refused by a full queue is told to
// wait: an operator has to act first, so sooner only adds load, and a real
// gateway still shows up within a minute of room being made.
const pendingRetryAfter = time.Minute

// pendingFresh is how long a pending count read from the database is
// trusted. Counting walks an index range (about 1 ms per 15,000 rows) while
// holding the one database connection; done on every new key of a flood
// that would be a large share of the database's time, done once a second
// it is nothing. Within one process the count is kept exact in between:
// each enrollment adds one inside its own transaction, which no other
// transaction interleaves with. Approvals, dismissals and expiry make it
// recount. Other processes sharing the database are seen at the next
// recount, so together they may overshoot the cap by what they enroll in
// a second.
const pendingFresh = time.Second

// pendingGauge is the cached count of pending devices and whether the queue
// is full, so the warning is logged once when it fills, not per refusal.
type pendingGauge struct {
	cap int
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	n    int
	read time.Time // when n was counted; zero means count again
	full bool
}

// count returns the number of pending devices, counting in tx when the
// cached one is stale.
func (g *pendingGauge) count(ctx context.Context, tx *store.Tx) (int, error) {
	g.mu.Lock()
	n, fresh := g.n, !g.read.IsZero() && g.now().Sub(g.read) < pendingFresh
	g.mu.Unlock()
	if fresh {
		return n, nil
	}
	n, err := tx.CountPending(ctx)
	if err != nil {
		return 0, err
	}
	g.set(n)
	return n, nil
}

// set records a count just read, inside the transaction that read it.
func (g *pendingGauge) set(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n, g.read = n, g.now()
	g.note()
}

// added counts one enrollment made in the current transaction.
func (g *pendingGauge) added() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	g.note()
}

// forget makes the next enrollment count again.
func (g *pendingGauge) forget() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.read = time.Time{}
}

// note logs when the queue fills up and when it has room again.
func (g *pendingGauge) note() {
	switch full := g.n >= g.cap; {
	case full && !g.full:
		g.log.Warn("pending queue full: new gateways are refused until an operator approves or dismisses pending ones",
			"pending", g.n, "cap", g.cap)
	case !full && g.full:
		g.log.Info("pending queue has room again", "pending", g.n, "cap", g.cap)
	}
	g.full = g.n >= g.cap
}

// pendingReserve is how many of the pending queue's last places are kept
// for gateways from addresses with none waiting, so a flood from a few
// hundred addresses fills the rest but a real gateway enrolling during it
// still reaches an operator. A tenth of the cap; none for a cap of one,
// whose single place is the whole queue.
func pendingReserve(cap int) int {
	if cap < 2 {
		return 0
	}
	return max(cap/10, 1)
}

// admitPending refuses a new key while the pending queue is full, and
// while it is in its reserve, a new key from an address that already has
// a gateway waiting. Only inside the reserve is the address looked up, so
// the ordinary enrollment costs no extra query. Keys already stored never
// come here: known gateways keep enrolling, waiting and acknowledging
// however full the queue is.
func (s *Service) admitPending(ctx context.Context, tx *store.Tx, addr string) error {
	n, err := s.pending.count(ctx, tx)
	if err != nil {
		return err
	}
	limit := s.cfg.PendingCap
	reserve := pendingReserve(limit)
	switch {
	case n < limit-reserve:
		return nil
	case n >= limit:
		return gatehouse.Errorf(gatehouse.EUNAVAILABLE,
			"the pending queue is full (%d gateways waiting for approval): an operator must approve or dismiss pending gateways before new ones can enroll",
			n).WithRetryAfter(pendingRetryAfter)
	}
	waiting, err := tx.PendingFrom(ctx, addr)
	if err != nil || !waiting {
		return err
	}
	return gatehouse.Errorf(gatehouse.EUNAVAILABLE,
		"the pending queue is nearly full (%d of %d); its last %d places are kept for gateways from addresses with none waiting, and %s already has one waiting: an operator must approve or dismiss it, or make room in the queue, before another can enroll from there",
		n, limit, reserve, addr).WithRetryAfter(pendingRetryAfter)
}

// expireBatch bounds the devices removed in one transaction, so device
// requests sharing the single SQLite connection wait for one short
// transaction at most.
const expireBatch = 500

// ExpirePending removes pending enrollments not heard from for
// Config.PendingExpiry, with their keys, nonces and timelines, and returns
// how many went. Approved, provisioned and dismissed devices are never
// touched, however long silent: only a pending one has nothing an operator
// decided.
func (s *Service) ExpirePending(ctx context.Context) (int, error) {
	total := 0
	for {
		var ids []string
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if ids, err = tx.PendingSeenBefore(ctx, tx.Now().Add(-s.cfg.PendingExpiry), expireBatch); err != nil {
				return err
			}
			return tx.DeleteDevices(ctx, ids)
		})
		if err != nil {
			return total, err
		}
		total += len(ids)
		if len(ids) > 0 {
			s.pending.forget()
		}
		for _, id := range ids {
			s.notify.Publish(id) // live views drop the row
		}
		if len(ids) < expireBatch {
			return total, nil
		}
	}
}

// expirePendingArgs is the hourly removal of pending enrollments gone quiet.
type expirePendingArgs struct{}

// Kind is stored with every job; never rename it.
func (expirePendingArgs) Kind() string { return "expire_pending" }

type expirePendingWorker struct {
	river.WorkerDefaults[expirePendingArgs]
	svc *Service
}

func (w *expirePendingWorker) Work(ctx context.Context, _ *river.Job[expirePendingArgs]) error {
	n, err := w.svc.ExpirePending(ctx)
	if n > 0 {
		w.svc.log.Info("removed pending enrollments not seen for a while", "count", n,
			"not_seen_for", w.svc.cfg.PendingExpiry.String())
	}
	return err
}

func expirePendingJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return expirePendingArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
