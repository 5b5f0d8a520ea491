package store

import (
	"context"
	"fmt"
)

// savepointName is the one savepoint name Savepoint uses: its savepoints
// follow each other in a transaction, never nest.
const savepointName = "gatehouse_part"

// Savepoint runs fn as a transaction of its own inside tx, so several
// callers' transactions can share one commit: what fn changed is undone if
// it fails, and tx goes on. fnErr is fn's error. txErr is tx's own (a
// savepoint that could not be set or undone), after which tx must roll
// back; nothing of it may be taken as done.
//
// fn sees what the parts before it changed, as if they had committed just
// before it began, and shares tx's clock.
func (tx *Tx) Savepoint(ctx context.Context, fn func(*Tx) error) (fnErr, txErr error) {
	if _, err := tx.q.ExecContext(ctx, `SAVEPOINT `+savepointName); err != nil {
		return nil, fmt.Errorf("store: savepoint: %w", err)
	}
	part := &Tx{q: tx.q, h: tx.h, jobs: tx.jobs, now: tx.now}
	fnErr = fn(part)
	if fnErr != nil {
		_, rerr := tx.q.ExecContext(ctx, `ROLLBACK TO SAVEPOINT `+savepointName)
		if rerr == nil {
			_, rerr = tx.q.ExecContext(ctx, `RELEASE SAVEPOINT `+savepointName)
		}
		if rerr != nil {
			return fnErr, fmt.Errorf("store: undo savepoint after %w: %w", fnErr, rerr)
		}
		return fnErr, nil
	}
	if _, err := tx.q.ExecContext(ctx, `RELEASE SAVEPOINT `+savepointName); err != nil {
		return nil, fmt.Errorf("store: release savepoint: %w", err)
	}
	tx.enqueued = tx.enqueued || part.enqueued
	return nil, nil
}
