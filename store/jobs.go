package store

import (
	"context"
	"errors"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// queue is the job queue on either dialect's River driver. Transactions are
// passed as any because River's client is generic over the driver's
// transaction type; riverQueue turns them back.
type queue interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	JobRetry(ctx context.Context, id int64) (*rivertype.JobRow, error)
	insertTx(ctx context.Context, tx any, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	insertManyTx(ctx context.Context, tx any, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
	jobGetTx(ctx context.Context, tx any, id int64) (*rivertype.JobRow, error)
	jobCancelTx(ctx context.Context, tx any, id int64) (*rivertype.JobRow, error)
}

type riverQueue[TTx any] struct{ *river.Client[TTx] }

func (q riverQueue[TTx]) insertTx(ctx context.Context, tx any, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return q.InsertTx(ctx, tx.(TTx), args, opts)
}

func (q riverQueue[TTx]) insertManyTx(ctx context.Context, tx any, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	return q.InsertManyTx(ctx, tx.(TTx), params)
}

func (q riverQueue[TTx]) jobGetTx(ctx context.Context, tx any, id int64) (*rivertype.JobRow, error) {
	return q.JobGetTx(ctx, tx.(TTx), id)
}

func (q riverQueue[TTx]) jobCancelTx(ctx context.Context, tx any, id int64) (*rivertype.JobRow, error) {
	return q.JobCancelTx(ctx, tx.(TTx), id)
}

// Jobs is the durable job queue kept in the same database, so a job is
// enqueued in the transaction that makes it due and is never lost or run
// for a change that rolled back.
type Jobs struct{ q queue }

// NewJobs makes the job queue on the database's own River driver. The
// database's transactions enqueue in it from then on.
func (d *DB) NewJobs(cfg *river.Config) (*Jobs, error) {
	q, err := d.eng.newQueue(cfg)
	if err != nil {
		return nil, err
	}
	d.jobs = q
	return &Jobs{q: q}, nil
}

// Start starts working jobs.
func (j *Jobs) Start(ctx context.Context) error { return j.q.Start(ctx) }

// Stop stops fetching jobs and waits for those running to finish or ctx to end.
func (j *Jobs) Stop(ctx context.Context) error { return j.q.Stop(ctx) }

// StopAndCancel cancels the running jobs' contexts and waits for them to return.
func (j *Jobs) StopAndCancel(ctx context.Context) error { return j.q.StopAndCancel(ctx) }

// Retry makes a job available to run now.
func (j *Jobs) Retry(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	return j.q.JobRetry(ctx, id)
}

var errNoQueue = errors.New("store: no job queue on this database (NewJobs was not called)")

// Enqueue adds a job that becomes visible when the transaction commits.
func (tx *Tx) Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	if tx.jobs == nil {
		return nil, errNoQueue
	}
	return tx.jobs.insertTx(ctx, tx.h.raw(), args, opts)
}

// EnqueueMany adds several jobs in the transaction.
func (tx *Tx) EnqueueMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	if tx.jobs == nil {
		return nil, errNoQueue
	}
	return tx.jobs.insertManyTx(ctx, tx.h.raw(), params)
}

// Job reads a job as the transaction sees it.
func (tx *Tx) Job(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	if tx.jobs == nil {
		return nil, errNoQueue
	}
	return tx.jobs.jobGetTx(ctx, tx.h.raw(), id)
}

// CancelJob cancels a job in the transaction.
func (tx *Tx) CancelJob(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	if tx.jobs == nil {
		return nil, errNoQueue
	}
	return tx.jobs.jobCancelTx(ctx, tx.h.raw(), id)
}
