package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// SQLite copies the write-ahead log back into the database file in a
// checkpoint, and by default the connection whose commit passes 1,000 WAL
// pages runs it, inside that commit, with two fsyncs. On gatehouse's one
// writing connection that stalls every writer behind it: measured under
// check-in load, 240 checkpoints held the writer 12.5 ms each (3 s of a
// 20 s run), and every device wait waits for its nonce's commit. So the
// writer never checkpoints by itself (wal_autocheckpoint 0) and a
// connection of its own copies the log beside it: a PASSIVE checkpoint
// takes no lock a writer needs, so commits go on while it copies and
// syncs.
//
// The log only starts again from its beginning when a write begins with
// every frame copied, and under steady writes that moment never comes
// beside the writer: new frames land while the copy runs. So once the log
// passes restartFrames, the writer itself runs one more PASSIVE
// checkpoint, queued like any of its transactions, which finds almost
// everything copied already and leaves nothing behind for its next write
// to wrap around. Its syncs then cover a few pages instead of a thousand.
//
// Durability is unchanged: a commit is in the WAL when it returns, as
// before (synchronous=NORMAL syncs the WAL at checkpoints, not at each
// commit), and a process killed between checkpoints leaves a WAL that the
// next open replays.

// restartFrames is the log's length at which the writer finishes a
// checkpoint, SQLite's own autocheckpoint threshold: the WAL stays about
// as long as it always was.
const restartFrames = 1000

// checkpointEvery is how often an idle checkpointer looks for commits: an
// idle server pays one cheap PRAGMA a tick (a few µs, 40 times a second),
// and a burst of writes from idle has 25 ms to grow the log before the
// first pass. While commits keep coming it looks again checkpointBusyGap
// after each pass, so the log it copies stays short at any write rate;
// each pass's syncs pace it anyway.
const (
	checkpointEvery   = 25 * time.Millisecond
	checkpointBusyGap = 2 * time.Millisecond
)

// checkpointer runs PASSIVE checkpoints on its own connection whenever the
// database changed since its last one.
type checkpointer struct {
	db     *sql.DB // its own connection
	writer *sql.DB // the store's writing connection
	stop chan struct{}
	once sync.Once
	done sync.WaitGroup
	// passes, when set, hears after each checkpoint (tests).
	passes chan<- struct{}
}

// startCheckpointer opens the connection and starts the loop; passes is
// the tests' hook, nil otherwise.
func startCheckpointer(path string, writer *sql.DB, passes chan<- struct{}) (*checkpointer, error) {
	conn, err := sqlite.NewConnector(sqliteURI(path) + "?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s for checkpoints: %w", path, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, writer: writer, stop: make(chan struct{}), passes: passes}
	c.done.Add(1)
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer c.done.Done()
	t := time.NewTimer(checkpointEvery)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		v := c.pass(last)
		if v != last {
			t.Reset(checkpointBusyGap)
		} else {
			t.Reset(checkpointEvery)
		}
		last = v
	}
}

// pass checkpoints if another connection committed since version, and
// returns the data_version it saw. data_version on a connection changes
// only with other connections' commits, which is every commit here: this
// one never writes.
func (c *checkpointer) pass(version int64) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var v int64
	if err := c.db.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil || v == version {
		return version
	}
	// A busy or failed pass is retried at the next tick: another process
	// may be checkpointing, and a full disk is the writers' to report.
	var busy, logged, copied int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied); err != nil {
		return version
	}
	if logged >= restartFrames {
		// Its error, too, waits for the next tick; the log only grows
		// meanwhile, as it would under SQLite's own checkpoints.
		c.writer.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied)
	}
	if c.passes != nil {
		c.passes <- struct{}{}
	}
	return v
}

// close stops the loop and closes the connection; again is a no-op.
func (c *checkpointer) close() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		c.done.Wait()
		err = c.db.Close()
	})
	return err
}
