package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gatehouse"
)

// ClaimNonces makes this process the one that serves the SQLite database:
// it takes a lock that a second `gatehouse serve` on the same file is
// refused, and from then on records nonces in a log of its own beside the
// database instead of in its nonces table. On PostgreSQL, where replicas
// share the table, it does nothing.
//
// A nonce in the table costs a SQLite commit (52 µs for five, in a
// microbenchmark: shared-memory locks and log pages written) and every
// device request waits for one; in the log it costs one append a batch.
// The durability is the table's: the append is made before any request
// of the batch is answered, so a replay is refused after the process is
// killed, and, as a commit under synchronous=NORMAL, it is not synced, so
// a power cut may lose the last of them. One process holding the lock is
// what makes the log enough: no other process answers device requests
// from this database.
//
// The log is one file per ten minutes of expiry, so a file whose every
// nonce has expired is removed whole. Past maxLoggedNonces live nonces (a
// flood of signed requests) new ones go to the table, slower but bounded
// by disk instead of memory, until every nonce stored there has expired.
func (d *DB) ClaimNonces(ctx context.Context) error {
	if d.Postgres() || d.nlog != nil {
		return nil
	}
	l, err := openNonceLog(d.dsn+"-nonces", micros(d.Now()))
	if err != nil {
		return err
	}
	// Nonces stored in the table before (another version, a process that
	// did not claim) still refuse their replays: until the last expires,
	// new nonces go there too, where the insert decides.
	var until *int64
	if err := d.q.QueryRowContext(ctx, `SELECT max(expires_at) FROM nonces WHERE expires_at > ?`, micros(d.Now())).Scan(&until); err != nil {
		l.close()
		return translate(err, "nonces")
	}
	if until != nil {
		l.spillUntil = *until
	}
	d.nlog = l
	return nil
}

// nonceBucket is how much expiry one log file covers, in µs.
const nonceBucket = int64(10 * time.Minute / time.Microsecond)

// maxLoggedNonces bounds the nonces the log keeps in memory: under 100
// bytes each (a 48-byte key in a map), so under 200 MiB. A fleet of 100,000 waiting gateways
// re-polls about 900 times a second, 540,000 nonces in ten minutes.
var maxLoggedNonces = 2_000_000

// nonceLog is the claimed nonces: a file and a set per bucket of expiry.
type nonceLog struct {
	dir  string
	lock *os.File

	mu      sync.Mutex
	buckets map[int64]*nonceSegment // by the bucket's start
	live    int
	// spillUntil (µs): until then fresh nonces go to the table, whose
	// rows a replay must meet.
	spillUntil int64
	broken     error // a failed append that could not be undone
}

type nonceSegment struct {
	f    *os.File
	size int64
	seen map[logKey]struct{}
}

// logKey is a use as the log keeps it in memory: the fingerprint's 32
// bytes and the nonce's 16, decoded from their hex. The keys hold no
// pointers, so a few hundred thousand of them cost the collector nothing
// to scan, and 48 bytes instead of two strings' 96 and headers.
type logKey [48]byte

// logKeyOf is u's key; false when the fingerprint or nonce is not the
// lower-case hex of 32 and 16 bytes, for which the table decides.
func logKeyOf(fingerprint, nonce string) (k logKey, ok bool) {
	if len(fingerprint) != 64 || len(nonce) != 32 || !lowerHex(fingerprint) || !lowerHex(nonce) {
		return k, false
	}
	hex.Decode(k[:32], []byte(fingerprint))
	hex.Decode(k[32:], []byte(nonce))
	return k, true
}

// lowerHex: hex.Decode also takes upper case, which would make two
// spellings of a nonce one.
func lowerHex(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ErrNoNonceLog is in the chain of ClaimNonces' error when the log cannot
// be written where the database is (a read-only directory or file
// system). Nothing was claimed: the nonces stay in the table, which then
// refuses device requests as a read-only database refuses every write,
// and the reads go on.
var ErrNoNonceLog = errors.New("store: no nonce log beside the database")

func openNonceLog(dir string, now int64) (*nonceLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, noNonceLog(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, noNonceLog(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store: another gatehouse process serves this database (it holds %s); "+
				"one server per SQLite file, or PostgreSQL for several", filepath.Join(dir, "lock"))
		}
		return nil, fmt.Errorf("store: nonce log: lock: %w", err)
	}
	l := &nonceLog{dir: dir, lock: lock, buckets: map[int64]*nonceSegment{}}
	if err := l.load(now); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// load reads the files left by the last process, removing expired ones.
func (l *nonceLog) load(now int64) error {
	names, err := filepath.Glob(filepath.Join(l.dir, "*.log"))
	if err != nil {
		return fmt.Errorf("store: nonce log: %w", err)
	}
	for _, name := range names {
		start, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(name), ".log"), 10, 64)
		if err != nil {
			continue // not one of ours
		}
		if start+nonceBucket <= now {
			if err := os.Remove(name); err != nil {
				return fmt.Errorf("store: nonce log: %w", err)
			}
			continue
		}
		seg, err := loadSegment(name)
		if err != nil {
			return err
		}
		l.buckets[start] = seg
		l.live += len(seg.seen)
	}
	return nil
}

// loadSegment reads one file. A last line without its newline is an
// append the process died in: no request of its batch was answered, so it
// is cut off, and the next append starts on a line of its own.
func loadSegment(name string) (*nonceSegment, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: nonce log: %w", err)
	}
	seg := &nonceSegment{f: f, seen: map[logKey]struct{}{}}
	r := bufio.NewReader(f)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			break // a torn line, if any, is len(line) bytes past seg.size
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("store: nonce log: %s: %w", name, err)
		}
		k, ok := parseNonceLine(line)
		if !ok {
			f.Close()
			return nil, fmt.Errorf("store: nonce log: %s line %d is not a nonce; the file is damaged: "+
				"remove it to start (accepting replays of requests signed up to ten minutes ago)", name, n)
		}
		seg.seen[k] = struct{}{}
		seg.size += int64(len(line))
	}
	if err := f.Truncate(seg.size); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: nonce log: %s: %w", name, err)
	}
	return seg, nil
}

// A line is "EXPIRES FINGERPRINT NONCE\n"; the expiry is there for a
// reader of the file, the bucket being in its name.
func appendNonceLine(b []byte, u *nonceUse) []byte {
	b = strconv.AppendInt(b, u.expires, 10)
	b = append(b, ' ')
	b = append(b, u.key...)
	b = append(b, ' ')
	b = append(b, u.nonce...)
	return append(b, '\n')
}

func parseNonceLine(line []byte) (logKey, bool) {
	f := bytes.Fields(line)
	if len(f) != 3 || line[len(line)-1] != '\n' {
		return logKey{}, false
	}
	if _, err := strconv.ParseInt(string(f[0]), 10, 64); err != nil {
		return logKey{}, false
	}
	return logKeyOf(string(f[1]), string(f[2]))
}

// noNonceLog is err, marked ErrNoNonceLog when it says the place cannot
// be written.
func noNonceLog(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return fmt.Errorf("%w: %w", ErrNoNonceLog, err)
	}
	return fmt.Errorf("store: nonce log: %w", err)
}

func bucketOf(expires int64) int64 { return expires - expires%nonceBucket }

// use records rows (distinct uses), returning which were fresh. A row
// whose nonce is logged is a replay; the others are appended, or, while
// the log spills, handed to table, whose insert decides.
func (l *nonceLog) use(rows []*nonceUse, now int64, table func([]*nonceUse) (map[nonceKey]bool, error)) (map[nonceKey]bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return nil, l.broken
	}
	l.prune(now)
	fresh := map[nonceKey]bool{}
	appends := map[int64][]loggedUse{}
	var spilled []*nonceUse
	for _, u := range rows {
		k, ok := logKeyOf(u.key, u.nonce)
		b := bucketOf(u.expires)
		if seg := l.buckets[b]; ok && seg != nil {
			if _, seen := seg.seen[k]; seen {
				continue
			}
		}
		if !ok || now < l.spillUntil || l.live >= maxLoggedNonces {
			// A replay of a use without a log key goes to the table
			// anyway; one with a key must, while the table holds it.
			if ok {
				l.spillUntil = max(l.spillUntil, u.expires)
			}
			spilled = append(spilled, u)
			continue
		}
		appends[b] = append(appends[b], loggedUse{u, k})
	}
	for b, us := range appends {
		if err := l.appendTo(b, us); err != nil {
			return nil, err
		}
		for _, lu := range us {
			fresh[nonceKey{lu.u.key, lu.u.nonce}] = true
		}
	}
	if len(spilled) > 0 {
		inserted, err := table(spilled)
		if err != nil {
			return nil, err
		}
		for k := range inserted {
			fresh[k] = true
		}
	}
	return fresh, nil
}

// loggedUse is a use to append, with its key decoded once.
type loggedUse struct {
	u *nonceUse
	k logKey
}

// appendTo writes us to bucket b's file in one write and only then counts
// them as seen. A failed write is cut back off, so the file holds whole
// lines; if that fails too, the log refuses every nonce from then on.
func (l *nonceLog) appendTo(b int64, us []loggedUse) error {
	seg := l.buckets[b]
	if seg == nil {
		f, err := os.OpenFile(filepath.Join(l.dir, strconv.FormatInt(b, 10)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nonceLogUnwritable(err)
		}
		seg = &nonceSegment{f: f, seen: map[logKey]struct{}{}}
		l.buckets[b] = seg
	}
	var buf []byte
	for _, lu := range us {
		buf = appendNonceLine(buf, lu.u)
	}
	if _, err := seg.f.Write(buf); err != nil {
		if terr := seg.f.Truncate(seg.size); terr != nil {
			l.broken = nonceLogUnwritable(errors.Join(err, terr))
		}
		return nonceLogUnwritable(err)
	}
	seg.size += int64(len(buf))
	for _, lu := range us {
		seg.seen[lu.k] = struct{}{}
	}
	l.live += len(us)
	return nil
}

// prune drops the buckets whose every nonce has expired, files included.
// A file it cannot remove is left for the next start to remove.
func (l *nonceLog) prune(now int64) {
	for b, seg := range l.buckets {
		if b+nonceBucket > now {
			continue
		}
		seg.f.Close()
		os.Remove(seg.f.Name())
		l.live -= len(seg.seen)
		delete(l.buckets, b)
	}
}

// nonceLogUnwritable is a failed append as the HTTP layer renders a
// database that cannot be written: 503, ask again later.
func nonceLogUnwritable(err error) error {
	api := gatehouse.Errorf(gatehouse.EUNAVAILABLE, "%s", unwritableMessage).WithRetryAfter(unwritableRetry)
	return &unwritableError{api: api, cause: fmt.Errorf("nonce log: %w", err)}
}

// close releases the files and the lock.
func (l *nonceLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, seg := range l.buckets {
		errs = append(errs, seg.f.Close())
	}
	l.buckets = nil
	errs = append(errs, l.lock.Close()) // closing the descriptor drops the flock
	return errors.Join(errs...)
}
