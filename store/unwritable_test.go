package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"gatehouse"
	"gatehouse/internal/pgtest"
	"gatehouse/store"
)

// The tests below make a real database unwritable four ways (a tmpfs that
// fills up, SQLite's own page limit, a read-only SQLite connection and a
// read-only PostgreSQL database) and check one contract through each:
// writes are refused as unavailable with a retry hint, readiness says why,
// what was committed stays readable, and writes and readiness come back by
// themselves once the database can be written again.

// unwritableCase is one way of making db unwritable and writable again.
type unwritableCase struct {
	db    *store.DB
	block func(t *testing.T)
	free  func(t *testing.T)
	// readsDuring: reads work while it lasts.
	readsDuring bool
	// lost, if set, says an error is a pooled session that block or free
	// ended: the pool meets each such session once, then reconnects.
	lost func(error) bool
}

// write is createDevice past the sessions c.lost says were ended.
func (c unwritableCase) write(ctx context.Context, set, i int) error {
	for {
		err := createDevice(ctx, c.db, set, i)
		if err == nil || c.lost == nil || !c.lost(err) {
			return err
		}
	}
}

// bigKey pads a device's key so a few hundred devices fill pages fast.
func bigKey(d *gatehouse.Device) gatehouse.DeviceKey {
	k := newKey(d)
	k.CSR = strings.Repeat("c", 3000)
	return k
}

// createDevice commits device i of set, each with a MAC of its own.
func createDevice(ctx context.Context, db *store.DB, set, i int) error {
	d := newDevice(fmt.Sprintf("dev-%d-%08d", set, i))
	d.MAC = fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", set, i>>16&0xff, i>>8&0xff, i&0xff)
	return db.InTx(ctx, func(tx *store.Tx) error { return tx.CreateDevice(ctx, d, bigKey(d)) })
}

func countDevices(t *testing.T, db *store.DB) (int, error) {
	t.Helper()
	var total int
	err := db.View(t.Context(), func(tx *store.Tx) error {
		_, n, err := tx.Devices(t.Context(), store.DeviceFilter{Limit: 1})
		total = n
		return err
	})
	return total, err
}

// checkRefused is what a write refused for an unwritable database must
// carry to the HTTP layer.
func checkRefused(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrUnwritable) {
		t.Fatalf("write error %v, want one wrapping store.ErrUnwritable", err)
	}
	if code := gatehouse.ErrorCode(err); code != gatehouse.EUNAVAILABLE {
		t.Errorf("code %q, want %q", code, gatehouse.EUNAVAILABLE)
	}
	if msg := gatehouse.ErrorMessage(err); !strings.Contains(msg, "disk full or read-only") || !strings.Contains(msg, "retry later") {
		t.Errorf("message %q does not say why and what to do", msg)
	}
	if gatehouse.ErrorRetryAfter(err) <= 0 {
		t.Error("no retry hint")
	}
}

func runUnwritable(t *testing.T, c unwritableCase) {
	ctx := t.Context()
	const before = 5
	for i := range before {
		if err := c.write(ctx, 0, i); err != nil {
			t.Fatalf("create before: %v", err)
		}
	}
	c.block(t)
	// Write until refused: a full disk may still take what fits.
	written := before
	var err error
	for i := range 100000 {
		if err = c.write(ctx, 1, i); err != nil {
			break
		}
		written++
	}
	checkRefused(t, err)
	t.Logf("refused after %d devices: %v", written, err)
	if err := c.db.Ready(ctx); !errors.Is(err, store.ErrUnwritable) {
		t.Errorf("Ready while unwritable: %v, want store.ErrUnwritable", err)
	}
	if c.readsDuring {
		if n, err := countDevices(t, c.db); err != nil || n != written {
			t.Errorf("devices while unwritable: %d, %v; want %d", n, err, written)
		}
	}
	// Still refused on a second try: nothing cleared the state.
	checkRefused(t, c.write(ctx, 2, 0))
	c.free(t)
	waitReady(t, c.db)
	if err := c.write(ctx, 3, 0); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	if n, err := countDevices(t, c.db); err != nil || n != written+1 {
		t.Errorf("devices after recovery: %d, %v; want %d", n, err, written+1)
	}
}

// waitReady polls Ready, each call with its own deadline, until it says
// ready; the store probes at most once a second.
func waitReady(t *testing.T, db *store.DB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := db.Ready(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready again after the database became writable: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // a poll tick, not a wait for an event
	}
}

// TestUnwritableDiskFull puts a SQLite database on a 16 MiB tmpfs, fills
// the file system with a ballast file, and frees it: ENOSPC as the kernel
// gives it. It needs the right to mount (root in a container that allows
// it); elsewhere TestUnwritablePageLimit makes SQLite refuse the same way.
func TestUnwritableDiskFull(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the disk-full case runs where tests may mount; TestUnwritablePageLimit covers SQLITE_FULL", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	db := openSQLite(t, filepath.Join(dir, "gatehouse.db"))
	ballast := filepath.Join(dir, "ballast")
	runUnwritable(t, unwritableCase{db: db, readsDuring: true,
		block: func(t *testing.T) { fill(t, ballast) },
		free: func(t *testing.T) {
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return
		}
	}
}

// TestUnwritablePageLimit caps the file at the pages it has: SQLite then
// refuses to grow it with SQLITE_FULL, as on a full disk, on any machine.
func TestUnwritablePageLimit(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	runUnwritable(t, unwritableCase{db: db, readsDuring: true,
		block: func(t *testing.T) {
			pages := queryString(t, db, "PRAGMA page_count")
			// The pool's one connection is the writer the store uses.
			queryString(t, db, "PRAGMA max_page_count = "+pages)
		},
		free: func(t *testing.T) { queryString(t, db, "PRAGMA max_page_count = 1073741823") },
	})
}

// TestUnwritableReadOnlySQLite makes the writer connection read-only:
// SQLITE_READONLY, as a database file that cannot be written gives.
func TestUnwritableReadOnlySQLite(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	runUnwritable(t, unwritableCase{db: db, readsDuring: true,
		block: func(t *testing.T) { execSQL(t, db, "PRAGMA query_only = 1") },
		free:  func(t *testing.T) { execSQL(t, db, "PRAGMA query_only = 0") },
	})
}

func execSQL(t *testing.T, db *store.DB, q string) {
	t.Helper()
	if _, err := db.SQL().ExecContext(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestUnwritableReadOnlyPostgres makes a database of its own read-only
// (default_transaction_read_only, as on a standby after a failover) and
// ends the sessions that opened before, so the pool reconnects under the
// new setting: writes fail with SQLSTATE 25006. The setting is never put
// on the shared test database.
func TestUnwritableReadOnlyPostgres(t *testing.T) {
	t.Parallel()
	base := pgtest.URL(t) // skips without GATEHOUSE_TEST_POSTGRES
	dsn, name := ownDatabase(t, base)
	db := openPostgres(t, dsn)
	runUnwritable(t, unwritableCase{db: db, readsDuring: true,
		block: func(t *testing.T) { setReadOnly(t, base, name, "on") },
		free:  func(t *testing.T) { setReadOnly(t, base, name, "off") },
		lost: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "57P01" // admin_shutdown
		},
	})
}

// ownDatabase creates a database for this test alone, dropped at its end,
// and returns its URL and name.
func ownDatabase(t *testing.T, base string) (string, string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "gh_unwritable_" + hex.EncodeToString(b)
	pgExec(t, base, "CREATE DATABASE "+name)
	t.Cleanup(func() { pgExec(t, base, "DROP DATABASE "+name+" WITH (FORCE)") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String(), name
}

// setReadOnly sets the database's default and ends its open sessions,
// which keep the default they started with.
func setReadOnly(t *testing.T, base, name, on string) {
	t.Helper()
	pgExec(t, base, fmt.Sprintf("ALTER DATABASE %s SET default_transaction_read_only = %s", name, on))
	pgExec(t, base, fmt.Sprintf("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = '%s' AND pid <> pg_backend_pid()", name))
}

func pgExec(t *testing.T, dsn, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
