package store

import (
	"context"
	"path/filepath"
	"testing"
)

// The check-in connections read only: a write sent there by mistake fails
// instead of racing the one writer. They close with the database.
func TestCheckinReadsAreReadOnly(t *testing.T) {
	t.Parallel()
	d, err := Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	q, _ := d.checkinQuerier(t.Context())
	if _, err := q.ExecContext(t.Context(), `DELETE FROM nonces`); err == nil {
		t.Error("a write on the check-in connections succeeded")
	}
	var n int
	if err := q.QueryRowContext(t.Context(), `SELECT count(*) FROM devices`).Scan(&n); err != nil {
		t.Errorf("a read on the check-in connections: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.eng.(*sqliteEngine).reads.PingContext(t.Context()); err == nil {
		t.Error("the check-in connections are open after Close")
	}
}

// A request already cancelled is refused before its status is read, as
// it was when the read could be interrupted.
func TestCheckinCancelled(t *testing.T) {
	t.Parallel()
	d, err := Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.Checkin(ctx, "fp", "192.0.2.1", 0); err == nil {
		t.Error("a cancelled check-in read a status")
	}
}
