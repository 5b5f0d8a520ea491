package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"gatehouse"
)

// CreateBulk inserts a bulk operation and its items, all waiting. The
// operation's origin is kept so its work is audited as its starter's.
func (tx *Tx) CreateBulk(ctx context.Context, op *gatehouse.BulkOperation, origin gatehouse.Origin) error {
	op.CreatedAt, op.Total = tx.now, len(op.Items)
	_, err := tx.q.ExecContext(ctx, `INSERT INTO bulk_operations
		(id, action, actor, source, request_id, total, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		op.ID, op.Action, op.Actor, origin.Source, origin.RequestID, op.Total, micros(tx.now))
	if err != nil {
		return translate(err, "bulk operation")
	}
	for i := range op.Items {
		it := &op.Items[i]
		it.Seq, it.State = i+1, gatehouse.BulkWaiting
		labels := ""
		if len(it.Labels) > 0 {
			b, err := json.Marshal(it.Labels)
			if err != nil {
				return fmt.Errorf("store: bulk item labels: %w", err)
			}
			labels = string(b)
		}
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO bulk_items
			(operation_id, seq, device_id, name, labels, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			op.ID, it.Seq, it.DeviceID, it.Name, labels, it.State, micros(tx.now)); err != nil {
			return translate(err, "bulk item")
		}
	}
	return nil
}

// Bulk returns a bulk operation with its counts and, if items is set, its
// items with their gateways' MAC and state now.
func (tx *Tx) Bulk(ctx context.Context, id string, items bool) (*gatehouse.BulkOperation, error) {
	var op gatehouse.BulkOperation
	var created int64
	var finished sql.NullInt64
	err := tx.q.QueryRowContext(ctx, `SELECT id, action, actor, total, created_at, finished_at,
		(SELECT COUNT(*) FROM bulk_items WHERE operation_id = o.id AND state = 'done'),
		(SELECT COUNT(*) FROM bulk_items WHERE operation_id = o.id AND state = 'failed')
		FROM bulk_operations o WHERE id = ?`, id).
		Scan(&op.ID, &op.Action, &op.Actor, &op.Total, &created, &finished, &op.Done, &op.Failed)
	if err != nil {
		return nil, translate(err, "bulk operation "+id)
	}
	op.CreatedAt, op.FinishedAt = fromMicros(created), fromNullMicros(finished)
	if items {
		if op.Items, err = tx.bulkItems(ctx, `WHERE i.operation_id = ? ORDER BY i.seq`, id); err != nil {
			return nil, err
		}
	}
	return &op, nil
}

// BulkOrigin is who started a bulk operation, and from where.
func (tx *Tx) BulkOrigin(ctx context.Context, id string) (gatehouse.Origin, error) {
	var o gatehouse.Origin
	err := tx.q.QueryRowContext(ctx, `SELECT actor, source, request_id FROM bulk_operations WHERE id = ?`, id).
		Scan(&o.Actor, &o.Source, &o.RequestID)
	return o, translate(err, "bulk operation "+id)
}

// WaitingBulkItems returns up to limit items still waiting, first first.
func (tx *Tx) WaitingBulkItems(ctx context.Context, id string, limit int) ([]gatehouse.BulkItem, error) {
	return tx.bulkItems(ctx, `WHERE i.operation_id = ? AND i.state = 'waiting' ORDER BY i.seq LIMIT ?`, id, limit)
}

func (tx *Tx) bulkItems(ctx context.Context, where string, args ...any) ([]gatehouse.BulkItem, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT i.seq, i.device_id, COALESCE(d.mac, ''), i.name, i.labels, i.state,
		i.result, COALESCE(d.state, '') FROM bulk_items i LEFT JOIN devices d ON d.id = i.device_id `+where, args...)
	if err != nil {
		return nil, translate(err, "bulk items")
	}
	defer rows.Close()
	var out []gatehouse.BulkItem
	for rows.Next() {
		var it gatehouse.BulkItem
		var labels string
		if err := rows.Scan(&it.Seq, &it.DeviceID, &it.MAC, &it.Name, &labels, &it.State, &it.Result, &it.DeviceState); err != nil {
			return nil, translate(err, "bulk item")
		}
		if labels != "" {
			if err := json.Unmarshal([]byte(labels), &it.Labels); err != nil {
				return nil, fmt.Errorf("store: bulk item labels: %w", err)
			}
		}
		out = append(out, it)
	}
	return out, translate(rows.Err(), "bulk items")
}

// FinishBulkItem records an item's outcome. Only a waiting item changes,
// so a result is never overwritten by a repeated attempt; it reports
// whether this call recorded it.
func (tx *Tx) FinishBulkItem(ctx context.Context, id string, seq int, state, result string) (bool, error) {
	res, err := tx.q.ExecContext(ctx, `UPDATE bulk_items SET state = ?, result = ?, updated_at = ?
		WHERE operation_id = ? AND seq = ? AND state = 'waiting'`, state, result, micros(tx.now), id, seq)
	if err != nil {
		return false, translate(err, "bulk item")
	}
	n, err := res.RowsAffected()
	return n > 0, translate(err, "bulk item")
}

// FinishBulk marks the operation finished once no item waits; it keeps the
// first time.
func (tx *Tx) FinishBulk(ctx context.Context, id string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE bulk_operations SET finished_at = ? WHERE id = ? AND finished_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM bulk_items WHERE operation_id = ? AND state = 'waiting')`, micros(tx.now), id, id)
	return translate(err, "bulk operation")
}

// DevicesByMAC lists the devices claiming a MAC, pending ones first.
func (tx *Tx) DevicesByMAC(ctx context.Context, mac string) ([]*gatehouse.Device, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT `+deviceColumns+deviceFrom+` WHERE d.mac = ?
		ORDER BY d.state = 'pending' DESC, d.first_seen DESC`, mac)
	if err != nil {
		return nil, translate(err, "devices")
	}
	defer rows.Close()
	var out []*gatehouse.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, translate(err, "device")
		}
		out = append(out, d)
	}
	return out, translate(rows.Err(), "devices")
}
