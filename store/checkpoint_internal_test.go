package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckpointBesideTheWriter: the writing connection leaves the WAL to
// grow past SQLite's 1,000-page autocheckpoint (so no commit of its own
// ever stops for a checkpoint's fsyncs), and the checkpointer copies it
// into the database file on a connection of its own. The database file's
// size is what a checkpoint changes: commits only append to the WAL.
func TestCheckpointBesideTheWriter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ckpt.db")
	e, err := openSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.close() }()
	// Take the engine's own checkpointer away so nothing else checkpoints.
	if err := e.ckpt.close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := e.db.ExecContext(ctx, `CREATE TABLE filler (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	// About 1,500 pages of 4 KiB, each commit its own.
	for i := range 1500 {
		if _, err := e.db.ExecContext(ctx, `INSERT INTO filler (v) VALUES (?)`, []byte(strings.Repeat("x", 4000))); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	if got := fileSize(t, path); got != before {
		t.Fatalf("database file went from %d to %d bytes: the writer checkpointed by itself", before, got)
	}
	if wal := fileSize(t, path+"-wal"); wal < 1000*4096 {
		t.Fatalf("WAL is %d bytes, want the 1,500 commits in it", wal)
	}

	passes := make(chan struct{}, 1)
	c, err := startCheckpointer(path, passes)
	if err != nil {
		t.Fatal(err)
	}
	e.ckpt = c
	select {
	case <-passes:
	case <-time.After(30 * time.Second):
		t.Fatal("no checkpoint in 30 s")
	}
	if got := fileSize(t, path); got < before+1000*4096 {
		t.Fatalf("database file %d bytes after the checkpoint, want the WAL's pages copied in", got)
	}
	// Nothing committed since: the next ticks find nothing to do.
	var n int
	if err := e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM filler`).Scan(&n); err != nil || n != 1500 {
		t.Fatalf("rows after the checkpoint: %d, %v", n, err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
