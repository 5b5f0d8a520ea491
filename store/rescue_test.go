package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"gatehouse/store"
)

// TestRequeueOrphans leaves a job running in a first queue, as a process
// killed mid-step leaves it, and starts a second queue on the same SQLite
// file with an hour's rescue time: RequeueOrphans must put the job back, so
// the second queue works it at once instead of an hour later.
func TestRequeueOrphans(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "orphans.db")
	started, release := make(chan int64, 1), make(chan struct{})
	stuck := river.NewWorkers()
	river.AddWorker(stuck, river.WorkFunc(func(ctx context.Context, job *river.Job[countArgs]) error {
		started <- job.ID
		<-release // the dead process never finishes it
		return nil
	}))
	dead := openSQLite(t, path)
	startJobs(t, dead, &river.Config{Workers: stuck})
	t.Cleanup(func() { close(release) })
	inTx(t, dead, func(tx *store.Tx) error {
		_, err := tx.Enqueue(ctx, countArgs{N: 7}, nil)
		return err
	})
	var id int64
	select {
	case id = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("job not started in 30 s")
	}

	worked := make(chan int64, 1)
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[countArgs]) error {
		worked <- job.ID
		return nil
	}))
	next := openSQLite(t, path)
	jobs, err := next.NewJobs(&river.Config{Workers: workers, RescueStuckJobsAfter: time.Hour,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}}, FetchPollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n, err := jobs.RequeueOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RequeueOrphans = %d, %v; want the 1 job left running", n, err)
	}
	if err := jobs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		jobs.StopAndCancel(stop)
	})
	select {
	case got := <-worked:
		if got != id {
			t.Fatalf("worked job %d, want %d", got, id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job left running was not worked in 30 s; the rescue time is an hour")
	}
}
