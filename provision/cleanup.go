package provision

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"gatehouse/store"
)

// cleanupArgs is the hourly removal of expired browser sessions.
type cleanupArgs struct{}

// Kind is stored with every job; never rename it.
func (cleanupArgs) Kind() string { return "cleanup_sessions" }

type cleanupWorker struct {
	river.WorkerDefaults[cleanupArgs]
	svc *Service
}

func (w *cleanupWorker) Work(ctx context.Context, _ *river.Job[cleanupArgs]) error {
	return w.svc.db.InTx(ctx, func(tx *store.Tx) error {
		n, err := tx.DeleteExpiredSessions(ctx)
		if n > 0 {
			w.svc.log.Info("removed expired sessions", "count", n)
		}
		return err
	})
}

func cleanupJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
		func() (river.JobArgs, *river.InsertOpts) { return cleanupArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// pruneNoncesArgs is the removal of request nonces whose timestamps have
// left the accepted window. It runs every minute, not hourly, because every
// device request adds a row: a large fleet long-polling would otherwise pile
// up millions of dead rows between runs.
type pruneNoncesArgs struct{}

// Kind is stored with every job; never rename it.
func (pruneNoncesArgs) Kind() string { return "prune_nonces" }

// pruneBatch bounds one DELETE, so device requests sharing the single SQLite
// connection wait for at most one short statement.
const pruneBatch = 5000

type pruneNoncesWorker struct {
	river.WorkerDefaults[pruneNoncesArgs]
	svc *Service
}

func (w *pruneNoncesWorker) Work(ctx context.Context, _ *river.Job[pruneNoncesArgs]) error {
	n, err := w.svc.PruneNonces(ctx)
	if n > 0 {
		w.svc.log.Debug("removed expired nonces", "count", n)
	}
	return err
}

func pruneNoncesJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Minute),
		func() (river.JobArgs, *river.InsertOpts) { return pruneNoncesArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
