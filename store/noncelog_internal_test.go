package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// claimed opens a SQLite file at path and claims its nonces.
func claimed(t *testing.T, path string) *DB {
	t.Helper()
	d, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ClaimNonces(context.Background()); err != nil {
		d.Close()
		t.Fatal(err)
	}
	return d
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func mustUse(t *testing.T, d *DB, key, nonce string, expires time.Time, want bool) {
	t.Helper()
	fresh, err := d.UseNonce(context.Background(), key, nonce, expires)
	if err != nil {
		t.Fatalf("UseNonce: %v", err)
	}
	if fresh != want {
		t.Fatalf("UseNonce(%s…) fresh = %v, want %v", nonce[:8], fresh, want)
	}
}

// TestNonceLogRefusesReplaysAfterRestart: a nonce the log recorded is
// refused again by the same process and after the process is gone (the
// file closed without any shutdown step, as a kill leaves it), and the
// table saw none of them.
func TestNonceLogRefusesReplaysAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	d := claimed(t, path)
	key, exp := randHex(32), time.Now().Add(10*time.Minute)
	nonces := []string{randHex(16), randHex(16), randHex(16)}
	for _, n := range nonces {
		mustUse(t, d, key, n, exp, true)
	}
	mustUse(t, d, key, nonces[0], exp, false)
	var rows int
	if err := d.q.QueryRowContext(t.Context(), `SELECT count(*) FROM nonces`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the table holds %d nonces (%v), want none while the log is claimed", rows, err)
	}
	d.Close()

	d = claimed(t, path)
	defer d.Close()
	for _, n := range nonces {
		mustUse(t, d, key, n, exp, false)
	}
	mustUse(t, d, key, randHex(16), exp, true)
}

// TestNonceLogOneServer: while one process holds the claim a second is
// refused, naming why; once the first closes, it may claim.
func TestNonceLogOneServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	first := claimed(t, path)
	second, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	err = second.ClaimNonces(t.Context())
	if err == nil || !strings.Contains(err.Error(), "another gatehouse process serves this database") {
		t.Fatalf("second claim: %v, want refused", err)
	}
	first.Close()
	if err := second.ClaimNonces(t.Context()); err != nil {
		t.Fatalf("claim after the first closed: %v", err)
	}
}

// TestNonceLogTornTail: a process killed inside an append leaves a line
// without its newline. Its batch was never answered, so the next start
// drops that line, keeps the whole ones, and appends after them.
func TestNonceLogTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	d := claimed(t, path)
	key, exp := randHex(32), time.Now().Add(10*time.Minute)
	kept := randHex(16)
	mustUse(t, d, key, kept, exp, true)
	d.Close()
	files, _ := filepath.Glob(filepath.Join(path+"-nonces", "*.log"))
	if len(files) != 1 {
		t.Fatalf("log files %v, want one", files)
	}
	torn := randHex(16)
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("123 " + key + " " + torn[:10])
	f.Close()

	d = claimed(t, path)
	mustUse(t, d, key, kept, exp, false)
	mustUse(t, d, key, torn, exp, true)
	d.Close()
	d = claimed(t, path) // the append after the cut left whole lines
	defer d.Close()
	mustUse(t, d, key, torn, exp, false)
}

// TestNonceLogDamaged: a line that is no nonce is not skipped: the start
// fails, naming the file, since what it held is unknown.
func TestNonceLogDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	d := claimed(t, path)
	mustUse(t, d, randHex(32), randHex(16), time.Now().Add(10*time.Minute), true)
	d.Close()
	files, _ := filepath.Glob(filepath.Join(path+"-nonces", "*.log"))
	os.WriteFile(files[0], []byte("garbage\n"), 0o600)
	d2, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := d2.ClaimNonces(t.Context()); err == nil || !strings.Contains(err.Error(), "is not a nonce") {
		t.Fatalf("claim over a damaged file: %v, want it refused", err)
	}
}

// TestNonceLogPrunesExpired: once every nonce of a file has expired, the
// file and its memory go, at the next use and at a start.
func TestNonceLogPrunesExpired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	d := claimed(t, path)
	defer d.Close()
	now := time.Now()
	d.Now = func() time.Time { return now }
	mustUse(t, d, randHex(32), randHex(16), now.Add(10*time.Minute), true)
	if d.nlog.live != 1 {
		t.Fatalf("live %d, want 1", d.nlog.live)
	}
	now = now.Add(30 * time.Minute)
	mustUse(t, d, randHex(32), randHex(16), now.Add(10*time.Minute), true)
	if d.nlog.live != 1 || len(d.nlog.buckets) != 1 {
		t.Fatalf("live %d in %d buckets after the first expired, want 1 in 1", d.nlog.live, len(d.nlog.buckets))
	}
	files, _ := filepath.Glob(filepath.Join(path+"-nonces", "*.log"))
	if len(files) != 1 {
		t.Fatalf("log files %v, want the expired one removed", files)
	}
}

// TestNonceLogSpills: past maxLoggedNonces, fresh nonces go to the table;
// replays of them are refused, and so is a replay of a logged one; the
// log takes nonces again only once every spilled one has expired.
func TestNonceLogSpills(t *testing.T) {
	old := maxLoggedNonces
	maxLoggedNonces = 2
	t.Cleanup(func() { maxLoggedNonces = old })
	path := filepath.Join(t.TempDir(), "g.db")
	d := claimed(t, path)
	defer d.Close()
	now := time.Now()
	d.Now = func() time.Time { return now }
	key, exp := randHex(32), now.Add(10*time.Minute)
	logged := []string{randHex(16), randHex(16)}
	for _, n := range logged {
		mustUse(t, d, key, n, exp, true)
	}
	spilled := randHex(16)
	mustUse(t, d, key, spilled, exp, true)
	mustUse(t, d, key, spilled, exp, false)
	mustUse(t, d, key, logged[1], exp, false)
	var rows int
	d.q.QueryRowContext(t.Context(), `SELECT count(*) FROM nonces`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("the table holds %d nonces, want the one spilled", rows)
	}
	// After the spilled one expired (and the logged ones with it), the
	// log takes nonces again.
	now = now.Add(30 * time.Minute)
	mustUse(t, d, key, randHex(16), now.Add(10*time.Minute), true)
	if d.nlog.live != 1 {
		t.Fatalf("live %d, want the new nonce logged", d.nlog.live)
	}
}

// TestNonceLogMeetsTableNonces: nonces the table took before the claim
// (an earlier version, a process that did not claim) still refuse their
// replays after it.
func TestNonceLogMeetsTableNonces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	d, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	key, nonce, exp := randHex(32), randHex(16), time.Now().Add(10*time.Minute)
	mustUse(t, d, key, nonce, exp, true)
	if err := d.ClaimNonces(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mustUse(t, d, key, nonce, exp, false)
	mustUse(t, d, key, randHex(16), exp, true)
}

// TestNoNonceLogOnlyForUnwritablePlaces: a directory that cannot be
// written (read-only, or no permission) leaves the nonces in the table;
// any other failure is an error of its own.
func TestNoNonceLogOnlyForUnwritablePlaces(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "mkdir", Path: "x", Err: syscall.EACCES}, true},
		{&fs.PathError{Op: "mkdir", Path: "x", Err: syscall.EROFS}, true},
		{&fs.PathError{Op: "mkdir", Path: "x", Err: syscall.ENOTDIR}, false},
	} {
		if got := errors.Is(noNonceLog(c.err), ErrNoNonceLog); got != c.want {
			t.Errorf("%v: ErrNoNonceLog %v, want %v", c.err, got, c.want)
		}
	}
}

// TestNonceLogOddKeysUseTheTable: a use whose fingerprint or nonce is not
// lower-case hex of the usual length (the protocol refuses such nonces;
// callers of the store may not) is decided by the table, and leaves the
// log taking the others.
func TestNonceLogOddKeysUseTheTable(t *testing.T) {
	d := claimed(t, filepath.Join(t.TempDir(), "g.db"))
	defer d.Close()
	exp := time.Now().Add(10 * time.Minute)
	odd := strings.ToUpper(randHex(16))
	mustUse(t, d, randHex(32), odd, exp, true)
	key := randHex(32)
	mustUse(t, d, key, odd, exp, true)
	mustUse(t, d, key, odd, exp, false)
	mustUse(t, d, key, randHex(16), exp, true)
	if d.nlog.live != 1 {
		t.Fatalf("live %d, want the one well-formed nonce logged", d.nlog.live)
	}
}
