package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// CountPending is how many devices are pending. It walks one range of an
// index, not the table: about a millisecond per 15,000 pending devices.
func (tx *Tx) CountPending(ctx context.Context) (int, error) {
	var n int
	err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE state = 'pending'`).Scan(&n)
	return n, translate(err, "devices")
}

// PendingSeenBefore returns the ids of up to limit pending devices last seen
// before t, the longest silent first (the index's order: no sort).
func (tx *Tx) PendingSeenBefore(ctx context.Context, t time.Time, limit int) ([]string, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT id FROM devices WHERE state = 'pending' AND last_seen < ?
		ORDER BY last_seen LIMIT ?`, micros(t), limit)
	if err != nil {
		return nil, translate(err, "devices")
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, translate(err, "devices")
		}
		ids = append(ids, id)
	}
	return ids, translate(rows.Err(), "devices")
}

// DeleteDevices removes devices and everything that belongs only to them:
// their keys, their steps and their timeline (their keys' nonces expire as
// any other, see ForgetDevice).
// Which devices may go is the caller's rule. Ids not found are skipped.
func (tx *Tx) DeleteDevices(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// Children first: keys and steps reference the device.
	for _, q := range []string{
		`DELETE FROM device_keys WHERE device_id IN ` + in,
		`DELETE FROM provisioning_steps WHERE device_id IN ` + in,
		`DELETE FROM device_events WHERE device_id IN ` + in,
		`DELETE FROM devices WHERE id IN ` + in,
	} {
		if _, err := tx.q.ExecContext(ctx, q, args...); err != nil {
			return translate(err, "devices")
		}
	}
	return nil
}

// PendingFrom reports whether a pending device was last heard from addr.
// It reads one entry of a partial index (migration 0019), so it is cheap
// enough to ask for every new key while the pending queue is nearly full.
func (tx *Tx) PendingFrom(ctx context.Context, addr string) (bool, error) {
	var one int
	err := tx.q.QueryRowContext(ctx, `SELECT 1 FROM devices WHERE state = 'pending' AND source_addr = ? LIMIT 1`, addr).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, translate(err, "devices")
}
