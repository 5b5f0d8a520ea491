package store

import (
	"context"

	"gatehouse"
)

// AddEvent appends to a device's timeline, stamped with the transaction time.
func (tx *Tx) AddEvent(ctx context.Context, e gatehouse.Event) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO device_events (device_id, at, kind, actor, detail) VALUES (?, ?, ?, ?, ?)`,
		e.DeviceID, micros(tx.now), e.Kind, e.Actor, e.Detail)
	return translate(err, "event")
}

// Events returns a device's timeline, oldest first.
func (tx *Tx) Events(ctx context.Context, deviceID string) ([]gatehouse.Event, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT id, device_id, at, kind, actor, detail
		FROM device_events WHERE device_id = ? ORDER BY id`, deviceID)
	if err != nil {
		return nil, translate(err, "events")
	}
	defer rows.Close()
	var out []gatehouse.Event
	for rows.Next() {
		var e gatehouse.Event
		var at int64
		if err := rows.Scan(&e.ID, &e.DeviceID, &at, &e.Kind, &e.Actor, &e.Detail); err != nil {
			return nil, translate(err, "events")
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, translate(rows.Err(), "events")
}
