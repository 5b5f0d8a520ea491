package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"gatehouse/store"
)

type countArgs struct {
	N int `json:"n"`
}

func (countArgs) Kind() string { return "count" }

// TestJobsAnnouncedAtCommit enqueues jobs one after another, each in its
// own transaction, on a SQLite queue whose workers poll only once an hour:
// each must still be worked, so it was announced when its transaction
// committed (River's notification table, read by the listener DB.run
// wakes), not found by a poll.
func TestJobsAnnouncedAtCommit(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "jobs.db"))
	worked := make(chan int, 1)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[countArgs]) error {
		select {
		case worked <- job.Args.N:
		case <-ctx.Done():
		}
		return nil
	}))
	startJobs(t, db, &river.Config{Workers: workers})
	for n := range 3 {
		start := time.Now()
		inTx(t, db, func(tx *store.Tx) error {
			_, err := tx.Enqueue(ctx, countArgs{N: n}, nil)
			return err
		})
		select {
		case got := <-worked:
			if got != n {
				t.Fatalf("worked job %d, want %d", got, n)
			}
			t.Logf("job %d worked %v after its commit", n, time.Since(start))
		case <-time.After(30 * time.Second):
			t.Fatalf("job %d committed but not worked in 30 s with hourly polls", n)
		}
	}
}

// TestRetryAnnounced fails a job once with its next try an hour away, on a
// queue that polls hourly: Retry must make it run at once, so the retry was
// announced to the producers.
func TestRetryAnnounced(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "retry.db"))
	tries := make(chan int64, 2)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[countArgs]) error {
		tries <- job.ID
		if job.Attempt == 1 {
			return errors.New("first try fails")
		}
		return nil
	}))
	jobs := startJobs(t, db, &river.Config{Workers: workers, RetryPolicy: hourLater{}})
	inTx(t, db, func(tx *store.Tx) error {
		_, err := tx.Enqueue(ctx, countArgs{N: 1}, nil)
		return err
	})
	var id int64
	select {
	case id = <-tries:
	case <-time.After(30 * time.Second):
		t.Fatal("job not worked in 30 s")
	}
	// The failed attempt is recorded by River after Work returns: retry
	// until the job is no longer running.
	for {
		job, err := jobs.Retry(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if job.State != rivertype.JobStateRunning {
			break
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	select {
	case <-tries:
	case <-time.After(30 * time.Second):
		t.Fatal("retried job not worked in 30 s with hourly polls and its next try an hour away")
	}
}

type hourLater struct{}

func (hourLater) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Hour) }

// startJobs starts a queue of one worker that never polls, so a job runs
// at once only if its announcement woke the queue; the test stops it.
func startJobs(t *testing.T, db *store.DB, cfg *river.Config) *store.Jobs {
	t.Helper()
	cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}}
	cfg.FetchCooldown = river.FetchCooldownMin
	cfg.FetchPollInterval = time.Hour
	jobs, err := db.NewJobs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := jobs.StopAndCancel(stop); err != nil {
			t.Errorf("StopAndCancel: %v", err)
		}
	})
	return jobs
}
