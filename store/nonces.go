package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// UseNonce records that key (a device key fingerprint) used nonce, valid
// until expires, and reports whether this was the first use. It returns
// only once the nonce is committed, so a replay is refused after a restart
// and by every process sharing the database; on any error the nonce counts
// as not fresh.
//
// Every device request calls it, so concurrent calls are committed
// together: one insert of many rows in one transaction (group commit)
// instead of one write transaction each, which on SQLite's one writing
// connection queued behind each other. The primary key still decides,
// atomically and across processes, which of two racing uses wins; two uses
// of one nonce in the same batch are told apart here, the first being the
// one that reaches the database. A row that has expired but not yet been
// pruned still refuses its request: that request's timestamp has left the
// accepted window too, so it is refused before it gets here anyway.
func (d *DB) UseNonce(ctx context.Context, key, nonce string, expires time.Time) (bool, error) {
	u := &nonceUse{key: key, nonce: nonce, expires: micros(expires), done: make(chan struct{})}
	d.nonces.add(ctx, u, d.flushNonces)
	select {
	case <-u.done:
		return u.fresh, u.err
	case <-ctx.Done():
		// The nonce may yet be recorded; the request it protects is not
		// answered, which is the safe way round.
		return false, fmt.Errorf("store: record nonce: %w", ctx.Err())
	}
}

// nonceUse is one UseNonce call waiting for its batch.
type nonceUse struct {
	key, nonce string
	expires    int64
	fresh      bool
	err        error
	done       chan struct{} // closed once fresh and err are set
}

// maxNonceBatch bounds one insert, so one batch's commit, and so the wait
// of its first caller, stays short whatever the load.
const maxNonceBatch = 256

// nonceFlushTimeout ends a batch stuck on an unresponsive database: its
// callers have given up by then, and the next batch deserves a fresh try.
// It applies on PostgreSQL, across a network. A SQLite batch runs with no
// deadline: a context that can end makes database/sql and the driver each
// start a goroutine per statement to watch it, which in a probe of
// insertNonces cost a one-nonce batch 136 µs of CPU instead of 79 (an
// eight-nonce batch 257 instead of 176), and on a local file a batch
// cannot hang: the one thing it waits for, another process's write lock,
// busy_timeout bounds to 10 s, after which it fails.
const nonceFlushTimeout = 30 * time.Second

// nonceBatcher gathers UseNonce calls while a batch is being written. No
// goroutine waits for work and nothing waits for a timer: a call finding
// nothing in flight writes the queue, its own nonce included, in its own
// goroutine; calls arriving meanwhile queue, and a flusher started when it
// is done writes them as one batch, and so on until the queue is empty.
//
// Before each batch the writer yields the processor (Gosched; again while
// the queue grows, see gather). On a busy server the requests that are
// ready to run then reach the queue and share the commit: a commit's fixed
// cost (its locks, its WAL write, the driver's round) is most of a nonce's,
// and without the yield a batch held less than two nonces in
// BenchmarkCheckins (1.7 a commit; 6.6 with one yield). On an idle one
// nothing else is ready and the yield returns at once, so a lone call
// still costs no hand-off between goroutines.
type nonceBatcher struct {
	// timeout bounds each batch; 0: no deadline (SQLite, see
	// nonceFlushTimeout).
	timeout time.Duration

	mu      sync.Mutex
	queue   []*nonceUse
	running bool
}

func (b *nonceBatcher) add(ctx context.Context, u *nonceUse, flush func(context.Context, []*nonceUse)) {
	b.mu.Lock()
	b.queue = append(b.queue, u)
	if b.running {
		b.mu.Unlock()
		return
	}
	b.running = true
	b.mu.Unlock()
	// The batch is other callers' too, so this call's end may not cancel it.
	ctx = context.WithoutCancel(ctx)
	b.gather()
	b.flushQueued(ctx, flush)
	// The flusher outlives this call: it writes other callers' nonces.
	b.next(ctx, flush, true)
}

// next starts or continues a flusher for what queued; it reports false,
// having marked nothing in flight, when the queue is empty.
func (b *nonceBatcher) next(ctx context.Context, flush func(context.Context, []*nonceUse), spawn bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.running = false
		b.queue = nil // let a burst's backing array go
		return false
	}
	if spawn {
		go b.run(ctx, flush)
	}
	return true
}

func (b *nonceBatcher) run(ctx context.Context, flush func(context.Context, []*nonceUse)) {
	for {
		b.gather()
		b.flushQueued(ctx, flush)
		if !b.next(ctx, flush, false) {
			return
		}
	}
}

// maxGatherYields bounds the yields before one batch.
const maxGatherYields = 4

// gather yields the processor before a batch, again while the queue grew
// during the last yield (up to maxGatherYields), so the requests that are
// on their way join the batch rather than wait for the next commit.
func (b *nonceBatcher) gather() {
	n := b.queued()
	for range maxGatherYields {
		runtime.Gosched()
		m := b.queued()
		if m == n || m >= maxNonceBatch {
			return
		}
		n = m
	}
}

func (b *nonceBatcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// flushQueued writes up to maxNonceBatch of the queued calls as one batch.
func (b *nonceBatcher) flushQueued(ctx context.Context, flush func(context.Context, []*nonceUse)) {
	b.mu.Lock()
	n := min(len(b.queue), maxNonceBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	if b.timeout == 0 {
		flush(ctx, batch)
		return
	}
	fctx, cancel := context.WithTimeout(ctx, b.timeout)
	flush(fctx, batch)
	cancel()
}

// flushNonces writes one batch and tells each caller its answer.
func (d *DB) flushNonces(ctx context.Context, batch []*nonceUse) {
	rows, dups := distinctNonces(batch)
	fresh, version, err := d.recordNonces(ctx, rows)
	// Before any wait in the batch reads its status (statusCache).
	if version != nil {
		d.statuses.otherWrites(*version)
	} else {
		d.checkOtherWrites(ctx)
	}
	for _, u := range rows {
		u.fresh, u.err = err == nil && fresh[nonceKey{u.key, u.nonce}], err
		close(u.done)
	}
	for _, u := range dups {
		// A second use in the batch is a replay of the first, whatever
		// became of it: refusing it is safe either way.
		close(u.done)
	}
}

// recordNonces records rows in the claimed log (ClaimNonces), or else in
// the table.
func (d *DB) recordNonces(ctx context.Context, rows []*nonceUse) (map[nonceKey]bool, *int64, error) {
	if d.nlog == nil {
		return d.insertNonces(ctx, rows)
	}
	fresh, err := d.nlog.use(rows, micros(d.Now()), func(spilled []*nonceUse) (map[nonceKey]bool, error) {
		fresh, _, err := d.insertNonces(ctx, spilled)
		return fresh, err
	})
	return fresh, nil, err
}

type nonceKey struct{ key, nonce string }

// distinctNonces splits a batch into the first use of each nonce, sorted by
// key so concurrent batches on PostgreSQL lock rows in one order and cannot
// deadlock, and the later uses.
func distinctNonces(batch []*nonceUse) (rows, dups []*nonceUse) {
	seen := make(map[nonceKey]bool, len(batch))
	for _, u := range batch {
		k := nonceKey{u.key, u.nonce}
		if seen[k] {
			dups = append(dups, u)
			continue
		}
		seen[k] = true
		rows = append(rows, u)
	}
	slices.SortFunc(rows, func(a, b *nonceUse) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.nonce, b.nonce))
	})
	return rows, dups
}

// sqliteInsertNonces is the insert of a batch of n rows, n a power of two
// (sqliteNonceInsert pads a batch to the next one): one multi-row VALUES,
// so SQLite binds the rows' values directly (a JSON array read through
// json_each cost more per row), and a handful of statement texts, each
// prepared once. RETURNING names the rows inserted, that is, the fresh
// uses. A row met is the same signed request again: its expiry comes from
// the signed timestamp, so a replay carries the one it was first stored
// with (see migration 0018). A padding row repeats the batch's last, so it
// meets that row and inserts nothing. Each row also carries the writing
// connection's data_version as the insert saw it, which spares the status
// cache a statement of its own after each batch (DB.checkOtherWrites).
var sqliteInsertNonces = func() []string {
	var qs []string
	for n := 1; n <= maxNonceBatch; n *= 2 {
		qs = append(qs, `INSERT INTO nonces (fingerprint, nonce, expires_at) VALUES (?, ?, ?)`+
			strings.Repeat(", (?, ?, ?)", n-1)+` ON CONFLICT DO NOTHING
			RETURNING fingerprint, nonce, (SELECT data_version FROM pragma_data_version)`)
	}
	return qs
}()

// postgresInsertNonces is the same with the batch as three arrays.
const postgresInsertNonces = `INSERT INTO nonces (fingerprint, nonce, expires_at)
	SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[])
	ON CONFLICT DO NOTHING
	RETURNING fingerprint, nonce`

// insertNonces inserts rows as one statement in its own (implicit)
// transaction and returns, once it has committed, which were fresh. It
// takes none of InTx's locks, the primary key being the arbiter, and on
// SQLite it adds no BEGIN and COMMIT to the one writer's work.
//
// The commit ends the statement: SQLite commits at the statement's last
// step, which reading its rows to the end takes and which reports a failed
// commit as an error; PostgreSQL commits before ReadyForQuery, and pgx
// reports an error sent after the rows when they close. So scanNonceKeys
// answers only for a committed batch.
//
// On SQLite it also returns the data_version the insert saw, nil when no
// row was inserted to carry it.
func (d *DB) insertNonces(ctx context.Context, rows []*nonceUse) (map[nonceKey]bool, *int64, error) {
	query, args, err := d.nonceInsert(rows)
	if err != nil {
		return nil, nil, err
	}
	r, err := d.q.QueryContext(ctx, query, args...)
	fresh, version, err := scanNonceKeys(r, err, !d.Postgres())
	if err != nil {
		return nil, nil, d.writes.note(translate(err, "nonces"))
	}
	return fresh, version, nil
}

// nonceInsert is the dialect's statement and arguments for rows.
func (d *DB) nonceInsert(rows []*nonceUse) (string, []any, error) {
	if d.Postgres() {
		keys, nonces, expires := make([]string, len(rows)), make([]string, len(rows)), make([]int64, len(rows))
		for i, u := range rows {
			keys[i], nonces[i], expires[i] = u.key, u.nonce, u.expires
		}
		return postgresInsertNonces, []any{keys, nonces, expires}, nil
	}
	return sqliteNonceInsert(rows)
}

// sqliteNonceInsert is the statement for rows, padded to a power of two,
// and its arguments.
func sqliteNonceInsert(rows []*nonceUse) (string, []any, error) {
	if len(rows) == 0 || len(rows) > maxNonceBatch {
		return "", nil, fmt.Errorf("store: record nonces: a batch of %d", len(rows))
	}
	size := 1 << bits.Len(uint(len(rows)-1))
	args := make([]any, 0, 3*size)
	for i := range size {
		u := rows[min(i, len(rows)-1)]
		args = append(args, u.key, u.nonce, u.expires)
	}
	return sqliteInsertNonces[bits.TrailingZeros(uint(size))], args, nil
}

// scanNonceKeys reads every returned row and closes them before asking
// for the error: the statement, and so its commit, has not finished until
// then. withVersion: each row ends with a data_version, returned from the
// last.
func scanNonceKeys(r rows, err error, withVersion bool) (map[nonceKey]bool, *int64, error) {
	if err != nil {
		return nil, nil, err
	}
	fresh := map[nonceKey]bool{}
	var version *int64
	for r.Next() {
		var k nonceKey
		var v int64
		dest := []any{&k.key, &k.nonce}
		if withVersion {
			dest = append(dest, &v)
		}
		if err := r.Scan(dest...); err != nil {
			r.Close()
			return nil, nil, err
		}
		fresh[k] = true
		if withVersion {
			version = &v
		}
	}
	cerr := r.Close()
	if err := errors.Join(r.Err(), cerr); err != nil {
		return nil, nil, err
	}
	return fresh, version, nil
}

// DeleteExpiredNonces removes up to limit expired nonces and returns how many
// went. Callers loop in batches so no single statement holds the one
// connection for long while device requests wait.
func (d *DB) DeleteExpiredNonces(ctx context.Context, limit int) (int64, error) {
	res, err := d.q.ExecContext(ctx, `DELETE FROM nonces WHERE (expires_at, fingerprint, nonce) IN
		(SELECT expires_at, fingerprint, nonce FROM nonces WHERE expires_at <= ? LIMIT ?)`, micros(d.Now()), limit)
	if err != nil {
		return 0, translate(err, "nonces")
	}
	return res.RowsAffected()
}
