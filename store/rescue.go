package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// orphanPage is how many orphaned jobs are read at a time.
const orphanPage = 1000

// RequeueOrphans makes the jobs a dead process left marked running
// available again, so they run as soon as the queue starts rather than
// once River's rescue time (minutes) has passed: after a crash, every
// gateway whose step was in flight would otherwise wait that long. Only on
// SQLite, whose file one process owns (two servers must never open it at
// once), so a job running before this process starts its queue is one
// nobody runs. On PostgreSQL another replica may be running it, so those
// jobs are left to the rescue. Call it before Start; it returns how many
// jobs it put back.
func (j *Jobs) RequeueOrphans(ctx context.Context) (int, error) {
	if !j.single {
		return 0, nil
	}
	n, err := j.q.requeueRunning(ctx, time.Now())
	if err != nil {
		return n, fmt.Errorf("store: requeue jobs left running: %w", err)
	}
	return n, nil
}

// requeueRunning puts every job running since before now back in the
// queue, as River's rescuer does (an error entry on the job, its rescue
// count up), but available at once.
func (q riverQueue[TTx]) requeueRunning(ctx context.Context, now time.Time) (int, error) {
	params := river.NewJobListParams().States(rivertype.JobStateRunning).First(orphanPage)
	total := 0
	for {
		res, err := q.JobList(ctx, params)
		if err != nil {
			return total, err
		}
		if len(res.Jobs) == 0 {
			return total, nil
		}
		rescue, err := orphanRescue(res.Jobs, now)
		if err != nil {
			return total, err
		}
		if _, err := q.Driver().GetExecutor().JobRescueMany(ctx, rescue); err != nil {
			return total, err
		}
		total += len(res.Jobs)
		if len(res.Jobs) < orphanPage {
			return total, nil
		}
		params = params.After(res.LastCursor)
	}
}

func orphanRescue(jobs []*rivertype.JobRow, now time.Time) (*riverdriver.JobRescueManyParams, error) {
	p := &riverdriver.JobRescueManyParams{StuckHorizon: now}
	for _, job := range jobs {
		msg, err := json.Marshal(rivertype.AttemptError{At: now, Attempt: max(job.Attempt, 0),
			Error: "left running by a process that stopped without finishing it; requeued when the queue started again"})
		if err != nil {
			return nil, err
		}
		p.ID = append(p.ID, job.ID)
		p.Error = append(p.Error, msg)
		p.FinalizedAt = append(p.FinalizedAt, nil)
		p.ScheduledAt = append(p.ScheduledAt, now)
		p.State = append(p.State, string(rivertype.JobStateAvailable))
	}
	return p, nil
}
