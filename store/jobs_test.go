package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"

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
	jobs, err := db.NewJobs(&river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers:           workers,
		FetchCooldown:     river.FetchCooldownMin,
		FetchPollInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := jobs.StopAndCancel(stop); err != nil {
			t.Errorf("StopAndCancel: %v", err)
		}
	})
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
