package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"gatehouse"
	"gatehouse/store"
)

// stepArgs is the durable job for one backend step of one device.
type stepArgs struct {
	DeviceID string             `json:"device_id" river:"unique"`
	Step     gatehouse.StepName `json:"step" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (stepArgs) Kind() string { return "provision_step" }

// InsertOpts makes a second enqueue of the same step a no-op while the first
// is still waiting or running.
func (stepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type stepWorker struct {
	river.WorkerDefaults[stepArgs]
	svc *Service
}

func (w *stepWorker) Work(ctx context.Context, job *river.Job[stepArgs]) error {
	return w.svc.runStep(withJob(ctx, job.ID), job.Args.DeviceID, job.Args.Step)
}

// Queues, so one kind of work cannot starve another: a slow webhook
// receiver or a backlog of follow-ups leaves provisioning steps alone.
const (
	queueFollow   = "follow"
	queueWebhooks = "webhooks"
)

// fetchCooldown is the least time between two fetches of one queue: a
// burst of enqueued jobs is taken in a few fetches, not one each, and a
// quiet queue's first job is fetched at once (the cooldown only delays the
// fetch after it).
const fetchCooldown = 10 * time.Millisecond

// maxAttempts is high because an approved device must never be dropped:
// with a 5-minute cap this keeps retrying for weeks, visibly.
const maxAttempts = 10000

func newJobClient(db *store.DB, s *Service) (*store.Jobs, error) {
	workers := river.NewWorkers()
	err := errors.Join(
		river.AddWorkerSafely(workers, &stepWorker{svc: s}),
		river.AddWorkerSafely(workers, &removalWorker{svc: s}),
		river.AddWorkerSafely(workers, &followWorker{svc: s}),
		river.AddWorkerSafely(workers, &webhookWorker{svc: s}),
		river.AddWorkerSafely(workers, &cleanupWorker{svc: s}),
		river.AddWorkerSafely(workers, &pruneNoncesWorker{svc: s}),
		river.AddWorkerSafely(workers, &expirePendingWorker{svc: s}),
		river.AddWorkerSafely(workers, &rekeyStepWorker{svc: s}),
		river.AddWorkerSafely(workers, &revokeReplacedWorker{svc: s}),
		river.AddWorkerSafely(workers, &allowlistWorker{svc: s}),
		river.AddWorkerSafely(workers, &bulkWorker{svc: s}),
		river.AddWorkerSafely(workers, &renewRevokeWorker{svc: s}),
	)
	if err != nil {
		return nil, fmt.Errorf("provision: register workers: %w", err)
	}
	c := s.cfg
	cooldown := min(fetchCooldown, c.PollInterval)
	queues := map[string]river.QueueConfig{
		river.QueueDefault: {MaxWorkers: c.Workers, FetchCooldown: cooldown},
		queueFollow:        {MaxWorkers: max(c.Workers/2, 1), FetchCooldown: cooldown},
	}
	// Deliveries are enqueued only while a receiver is configured, and
	// cannot be made without one: an idle queue would only cost its polls.
	if c.Webhook != nil {
		queues[queueWebhooks] = river.QueueConfig{MaxWorkers: max(c.Workers/4, 1), FetchCooldown: cooldown}
	}
	client, err := db.NewJobs(&river.Config{
		Queues:  queues,
		Workers: workers,
		// The client's cooldown is also how long River holds back an insert
		// notification after one for the same queue. A held-back job is
		// found only by the next poll when the fetch the earlier one caused
		// ran before it committed, so notifications go out unthrottled and
		// the queues' own cooldowns above batch the fetches instead.
		FetchCooldown:        river.FetchCooldownMin,
		FetchPollInterval:    c.PollInterval,
		JobTimeout:           c.JobTimeout,
		RescueStuckJobsAfter: c.RescueAfter,
		MaxAttempts:          maxAttempts,
		RetryPolicy:          &retryPolicy{base: c.RetryBase, max: c.RetryMax},
		Logger:               slog.New(InfoAsDebug(c.Logger.Handler())), // its info lines at debug: see InfoAsDebug
		PeriodicJobs:         []*river.PeriodicJob{cleanupJob(), pruneNoncesJob(), expirePendingJob()},
	})
	if err != nil {
		return nil, fmt.Errorf("provision: job client: %w", err)
	}
	return client, nil
}

// retryPolicy backs off exponentially with full jitter, capped, so many
// devices failing against one backend do not retry in lockstep.
type retryPolicy struct{ base, max time.Duration }

func (p *retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(p.delay(job.Attempt))
}

func (p *retryPolicy) delay(attempt int) time.Duration {
	d := p.max
	if attempt < 30 {
		d = min(p.base<<max(attempt-1, 0), p.max)
	}
	return d/2 + rand.N(d/2+1)
}
