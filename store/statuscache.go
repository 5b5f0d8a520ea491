package store

import (
	"context"
	"sync"
)

// statusCache keeps the check-in status of the keys that waited lately, so
// a wait from a key whose device has not changed answers without a read:
// on SQLite that read (one indexed join, but a statement through
// database/sql and the driver) cost about a tenth of a key-signed wait's
// CPU in BenchmarkCheckins.
//
// It must never answer with a status older than a change committed before
// the wait arrived, since that change may be an approval. So it forgets
// everything:
//   - when a transaction of this process commits (DB.run, for InTx): no
//     entry is served from just before its commit until it is forgotten,
//     and no read that began before it may fill an entry after it;
//   - when another connection to the file, another process's, has committed
//     since the last look: SQLite's data_version on the one writing
//     connection, where only other connections' commits change it, as each
//     nonce batch's insert returns it (or DB.checkOtherWrites reads it, for a
//     batch that inserted nothing).
//
// Every device request commits its nonce before it reads its status
// (server.admitDevice, then the handler), so the batch that committed a
// wait's nonce looked for other processes' writes after the wait arrived:
// a hit is as fresh as a read.
//
// Writes that are not transactions leave it be: nonces, and touchDevice,
// whose last-seen columns each entry tracks itself. It is on SQLite only:
// on PostgreSQL replicas hear of each other's commits by notifications that
// arrive after them, and a wait in between would read a stale entry.
type statusCache struct {
	mu sync.Mutex
	m  map[string]*cachedStatus
	// gen counts the times everything was forgotten; a read that began in
	// one generation may not fill an entry in the next.
	gen uint64
	// committing counts transactions between the start of their commit and
	// the forgetting that follows it; while any is, nothing is served.
	committing int
	// dataVersion is the writer's PRAGMA data_version when last read.
	dataVersion int64
	// off: nothing is kept any more (DB.SQL was called).
	off bool
}

// cachedStatus is one key's status, with the last-seen columns the read
// also returned so whether a wait must note the device seen is decided
// here as the statement decides it.
type cachedStatus struct {
	st       DeviceStatus
	lastSeen int64 // micros
	addr     string
}

// maxCachedStatuses bounds the cache; when full it starts again empty.
// 20,000 entries take a few MiB.
const maxCachedStatuses = 20000

// get returns a copy of the status of key fp, if it may be served.
func (c *statusCache) get(fp string) (cachedStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[fp]
	if !ok || c.committing > 0 || c.off {
		return cachedStatus{}, false
	}
	return *e, true
}

// begin is the generation a read starts in, and false when no entry may
// come of it because a commit is under way.
func (c *statusCache) begin() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.committing == 0 && !c.off
}

// put keeps e for fp, unless everything was forgotten since its read began
// in generation gen or a commit is under way.
func (c *statusCache) put(fp string, e cachedStatus, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.committing > 0 || c.off {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedStatuses {
		c.m = make(map[string]*cachedStatus)
	}
	c.m[fp] = &e
}

// seen records that the device of key fp was noted seen at now from addr,
// if the entry is still the one a read of generation gen filled.
func (c *statusCache) seen(fp string, now int64, addr string, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[fp]; ok && c.gen == gen {
		e.lastSeen, e.addr = now, addr
	}
}

// committingTx marks a commit as under way; the function it returns, called
// once the commit has returned, forgets everything and ends the mark.
func (c *statusCache) committingTx() func() {
	c.mu.Lock()
	c.committing++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.forgetLocked()
		c.committing--
	}
}

// disable forgets everything and keeps nothing from now on.
func (c *statusCache) disable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = true
	c.forgetLocked()
}

func (c *statusCache) forgetLocked() {
	c.gen++
	c.m = nil
}

// otherWrites forgets everything when version, the writer's data_version,
// differs from the one last seen.
func (c *statusCache) otherWrites(version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.dataVersion || version == -1 {
		c.dataVersion = version
		c.forgetLocked()
	}
}

// checkOtherWrites reads the writer's data_version, which changes only when
// another connection (on SQLite, another process) has committed, and
// forgets the cached statuses if it did. It runs after a nonce batch whose
// insert returned no row (and so no data_version), on the writing
// connection (the pool has that one): until it has run, no wait in the
// batch reads its status. On an error everything is forgotten.
func (d *DB) checkOtherWrites(ctx context.Context) {
	if d.Postgres() {
		return
	}
	var v int64
	if err := d.q.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		v = -1 // no version SQLite reports, so the next one read forgets too
	}
	d.statuses.otherWrites(v)
}
