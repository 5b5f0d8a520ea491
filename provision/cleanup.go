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
