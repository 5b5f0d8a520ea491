package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
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
	announce(ctx context.Context, queue string) error
	committed()
	requeueRunning(ctx context.Context, now time.Time) (int, error)
}

// riverQueue is a River client; wake, if set, is told when a transaction
// that enqueued jobs has committed.
type riverQueue[TTx any] struct {
	*river.Client[TTx]
	wake func()
}

func (q riverQueue[TTx]) committed() {
	if q.wake != nil {
		q.wake()
	}
}

// announce tells the queue's producers, as an insert does, that queue has
// a job available: River announces inserts only, so a job made available
// otherwise (a retry) would wait for the next poll.
func (q riverQueue[TTx]) announce(ctx context.Context, queue string) error {
	return q.Driver().GetExecutor().NotifyMany(ctx, &riverdriver.NotifyManyParams{
		Payload: []string{fmt.Sprintf(`{"queue": %q}`, queue)},
		Topic:   insertTopic,
	})
}

// insertTopic is River's notification topic for inserted jobs
// (notifier.NotificationTopicInsert, internal to River).
const insertTopic = "river_insert"

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
// for a change that rolled back. single is set on SQLite, whose file one
// process owns (see RequeueOrphans).
type Jobs struct {
	q      queue
	single bool
}

// NewJobs makes the job queue on the database's own River driver. The
// database's transactions enqueue in it from then on.
func (d *DB) NewJobs(cfg *river.Config) (*Jobs, error) {
	q, err := d.eng.newQueue(cfg)
	if err != nil {
		return nil, err
	}
	d.jobs = q
	return &Jobs{q: q, single: !d.Postgres()}, nil
}

// Start starts working jobs.
func (j *Jobs) Start(ctx context.Context) error { return j.q.Start(ctx) }

// Stop stops fetching jobs and waits for those running to finish or ctx to end.
func (j *Jobs) Stop(ctx context.Context) error { return j.q.Stop(ctx) }

// StopAndCancel cancels the running jobs' contexts and waits for them to return.
func (j *Jobs) StopAndCancel(ctx context.Context) error { return j.q.StopAndCancel(ctx) }

// Retry makes a job available to run now, and says so to the queue, so it
// runs without waiting for the producers' next poll.
func (j *Jobs) Retry(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	job, err := j.q.JobRetry(ctx, id)
	if err != nil || job.State != rivertype.JobStateAvailable {
		return job, err
	}
	if err := j.q.announce(ctx, job.Queue); err != nil {
		return nil, fmt.Errorf("store: announce retried job %d: %w", id, err)
	}
	j.q.committed()
	return job, nil
}

var errNoQueue = errors.New("store: no job queue on this database (NewJobs was not called)")

// Enqueue adds a job that becomes visible when the transaction commits.
func (tx *Tx) Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	if tx.jobs == nil {
		return nil, errNoQueue
	}
	tx.enqueued = true
	return tx.jobs.insertTx(ctx, tx.h.raw(), args, opts)
}

// EnqueueMany adds several jobs in the transaction.
func (tx *Tx) EnqueueMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	if tx.jobs == nil {
		return nil, errNoQueue
	}
	tx.enqueued = true
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

// River announces new jobs through its notification table on SQLite, and
// its listener reads that table every 50 ms: most of an idle server's work.
// Every job this process enqueues is committed by DB.run, so the listener
// here reads the table as River's does only for hotFor after such a
// commit, and otherwise once every listenPoll, for what River announces by
// itself (retries coming due, periodic jobs, cancellations), which its
// producers' own polls back up.
const (
	listenPoll = time.Second
	hotFor     = time.Second
)

// peekFor is how long a quiet listener's read may take: River's listener
// waits 50 ms after an empty read, so a call cut at 40 ms reads once.
const peekFor = 40 * time.Millisecond

// sqliteDriver is River's SQLite driver with that listener.
type sqliteDriver struct {
	*riversqlite.Driver
	wake chan struct{}
}

func newSQLiteDriver(db *sql.DB) *sqliteDriver {
	return &sqliteDriver{Driver: riversqlite.New(db), wake: make(chan struct{}, 1)}
}

// jobsCommitted wakes the listener; a wake already pending covers this one.
func (d *sqliteDriver) jobsCommitted() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// GetListener implements riverdriver.Driver.
func (d *sqliteDriver) GetListener(p *riverdriver.GetListenenerParams) riverdriver.Listener {
	return &wakeListener{Listener: d.Driver.GetListener(p), wake: d.wake}
}

// wakeListener is called by one goroutine, River's notifier, at a time.
type wakeListener struct {
	riverdriver.Listener
	wake  <-chan struct{}
	until time.Time // reading as River does until then
}

// WaitForNotification returns the next notification, read by River's
// listener while hot and once per listenPoll while quiet. River's notifier
// cancels ctx to listen, unlisten or ping meanwhile, and gets ctx's error.
func (l *wakeListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	for {
		if time.Now().After(l.until) {
			if err := l.quiet(ctx); err != nil {
				return nil, err
			}
		}
		read, cancel := context.WithDeadline(ctx, l.until)
		n, err := l.Listener.WaitForNotification(read)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if n != nil || !errors.Is(err, context.DeadlineExceeded) {
			return n, err
		}
	}
}

// quiet waits for a commit of this process's, which makes the listener
// hot, or for listenPoll to pass, which allows it one read.
func (l *wakeListener) quiet(ctx context.Context) error {
	tick := time.NewTimer(listenPoll)
	defer tick.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-l.wake:
		l.until = time.Now().Add(hotFor)
	case <-tick.C:
		l.until = time.Now().Add(peekFor)
	}
	return nil
}
