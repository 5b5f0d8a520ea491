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
// writer never checkpoints (wal_autocheckpoint 0) and a connection of its
// own does it beside the writer: a PASSIVE checkpoint takes no lock a
// writer needs, so commits go on while it copies and syncs.
//
// Durability is unchanged: a commit is in the WAL when it returns, as
// before (synchronous=NORMAL syncs the WAL at checkpoints, not at each
// commit), and a process killed between checkpoints leaves a WAL that the
// next open replays.

// checkpointEvery is how often the checkpointer looks for new commits. At
// a few thousand commits a second the WAL grows a few MiB between looks,
// about what 1,000 pages is; an idle server pays one cheap PRAGMA a tick.
const checkpointEvery = 100 * time.Millisecond

// checkpointer runs PASSIVE checkpoints on its own connection whenever the
// database changed since its last one.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	once sync.Once
	done sync.WaitGroup
	// passes, when set, hears after each checkpoint (tests).
	passes chan<- struct{}
}

// startCheckpointer opens the connection and starts the loop; passes is
// the tests' hook, nil otherwise.
func startCheckpointer(path string, passes chan<- struct{}) (*checkpointer, error) {
	conn, err := sqlite.NewConnector(sqliteURI(path) + "?_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("store: open %s for checkpoints: %w", path, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, stop: make(chan struct{}), passes: passes}
	c.done.Add(1)
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer c.done.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		last = c.pass(last)
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
