package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"gatehouse"
)

// A database that cannot be written (its disk is full, its file system or
// server is read-only, its storage fails) is a state the server lives
// through, not a crash: writes are refused with a 503 that says why and
// asks the caller to come back, reads go on, readiness takes the replica
// out of rotation, and all of it ends by itself once a write goes through.

// ErrUnwritable is in the chain of every error a write met because the
// database cannot be written, and of Ready's answer while that lasts.
var ErrUnwritable = errors.New("store: the database cannot be written")

// unwritableRetry is the Retry-After sent with a refused write: space or a
// writable primary takes seconds to come back at best, and an agent that
// asks every few seconds costs nothing.
const unwritableRetry = 5 * time.Second

// unwritableMessage is what a refused caller reads. Nothing in it comes
// from the driver, whose messages may name files.
const unwritableMessage = "the database cannot be written (disk full or read-only): nothing was saved; retry later"

// PostgreSQL's SQLSTATEs for a database that cannot take writes.
const (
	pgDiskFull         = "53100" // disk_full
	pgReadOnlyTx       = "25006" // read_only_sql_transaction: a standby, or default_transaction_read_only
	pgIOError          = "58030" // io_error
	unwritableProbeGap = time.Second
)

// unwritableError is a driver error classified as unwritable. It unwraps to
// ErrUnwritable, to the *gatehouse.Error the HTTP layer renders (code
// unavailable, so 503 through the one code-to-status map) and to the
// driver's error, kept for logs.
type unwritableError struct {
	api   *gatehouse.Error
	cause error
}

func (e *unwritableError) Error() string {
	return fmt.Sprintf("%v (disk full or read-only): %v", ErrUnwritable, e.cause)
}

func (e *unwritableError) Unwrap() []error { return []error{ErrUnwritable, e.api, e.cause} }

// asUnwritable returns err classified: an *unwritableError when a driver
// error in its chain says the database cannot be written, err itself
// otherwise (nil included).
func asUnwritable(err error) error {
	if err == nil || errors.Is(err, ErrUnwritable) || !unwritableCause(err) {
		return err
	}
	api := gatehouse.Errorf(gatehouse.EUNAVAILABLE, "%s", unwritableMessage).WithRetryAfter(unwritableRetry)
	return &unwritableError{api: api, cause: err}
}

// unwritableCause reports whether a driver error in err's chain says the
// database cannot take writes. SQLite reports a full disk (ENOSPC, or
// max_page_count reached) as SQLITE_FULL, a read-only file, directory or
// connection as SQLITE_READONLY and its extended codes, and a write the
// kernel refused otherwise (EFBIG, EIO, a -shm it cannot grow) as one of
// the SQLITE_IOERR codes; the low byte of an extended code is its primary
// code.
func unwritableCause(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case pgDiskFull, pgReadOnlyTx, pgIOError:
			return true
		}
	}
	return false
}

// writeHealth remembers that a write failed because the database cannot
// be written, until a probe write goes through. A successful transaction
// does not clear it by itself: on SQLite one that only read commits
// without touching the disk, and would say nothing about space.
type writeHealth struct {
	mu        sync.Mutex
	err       error // the last unwritable error; nil while writes work
	lastProbe time.Time
}

// note records what a write transaction's error says and returns the
// error classified (see asUnwritable).
func (w *writeHealth) note(err error) error {
	err = asUnwritable(err)
	if errors.Is(err, ErrUnwritable) {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}
	return err
}

// failing is the recorded failure, and whether a probe is due: at most one
// a unwritableProbeGap, since /readyz is public and each probe is a commit.
func (w *writeHealth) failing() (err error, probe bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		return nil, false
	}
	if time.Since(w.lastProbe) < unwritableProbeGap {
		return w.err, false
	}
	w.lastProbe = time.Now()
	return w.err, true
}

func (w *writeHealth) clear() {
	w.mu.Lock()
	w.err = nil
	w.mu.Unlock()
}

// noteWrite is InTx's hook: it classifies the transaction's error and,
// after a success while writes were failing, probes whether they work
// again, so a server that takes writes again says so without waiting for
// its readiness check.
func (d *DB) noteWrite(ctx context.Context, err error) error {
	err = d.writes.note(err)
	if err == nil {
		if _, probe := d.writes.failing(); probe {
			d.probeWrite(ctx)
		}
	}
	return err
}

// Writable says whether the database takes writes: nil unless a write
// failed because it cannot be written and no probe write has gone through
// since. While failing it probes (at most once a second), so recovery is
// seen without any caller's write: space freed, a read-only database made
// writable again.
func (d *DB) Writable(ctx context.Context) error {
	err, probe := d.writes.failing()
	if err == nil || !probe {
		return err
	}
	perr := d.probeWrite(ctx)
	if perr == nil || errors.Is(perr, ErrUnwritable) {
		return perr
	}
	// The probe did not get as far as a write (a timeout, a lost
	// connection): what is known is still the last failure.
	return fmt.Errorf("%w (probe: %v)", err, perr)
}

// probeSize is how much a probe writes: more than a device's or an
// approval's few KiB, so space a failed write left half-used (a full disk
// keeps the pages a refused commit managed to take) does not pass for room.
const probeSize = 256 << 10

// probeName is the probe's row in server_secrets, a name no secret has.
const probeName = "gatehouse.write-probe"

// probeWrite commits one real write and clears the failure when it goes
// through. It inserts probeSize random bytes (incompressible, so
// PostgreSQL's TOAST stores them all) into server_secrets, the one table
// with a free-form value and no index on it, and deletes them in the same
// transaction: no reader ever sees the row, yet SQLite writes every page
// to the WAL, and grows the file as a real write would (SQLITE_FULL where
// it cannot), and a read-only PostgreSQL transaction refuses the INSERT.
func (d *DB) probeWrite(ctx context.Context) error {
	junk := make([]byte, probeSize)
	rand.Read(junk)
	err := d.writes.note(d.run(ctx, d.eng.begin, true, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)`,
			probeName, junk, micros(tx.now)); err != nil {
			return fmt.Errorf("store: write probe: %w", err)
		}
		_, err := tx.q.ExecContext(ctx, `DELETE FROM server_secrets WHERE name = ?`, probeName)
		return err
	}))
	if err == nil {
		d.writes.clear()
	}
	return err
}
