package store

import (
	"context"
	"database/sql"
	"time"

	"gatehouse"
)

// DeviceStatus is what a device's own request learns of it: the little a
// wait answers with, read in one statement.
type DeviceStatus struct {
	DeviceID         string
	State            gatehouse.State
	Name             string
	Fingerprint      string // the device's current key
	VerificationCode string
	Acked            bool // the device confirmed receipt of its bundle
}

// statusQuery finds a key's device and the columns its status needs, with
// the last-seen columns touchDevice decides by.
const statusQuery = `SELECT k.device_id, k.replaced_at, d.state, COALESCE(d.name, ''), d.fingerprint,
	d.verification_code, d.acked_at, d.last_seen, d.source_addr
	FROM device_keys k JOIN devices d ON d.id = k.device_id WHERE k.fingerprint = ?`

// staleSeen holds for a device row whose last_seen is at or before its
// first argument or whose source_addr is not its second: one touchDevice
// updates. Checkin decides whether to call it by the same condition
// (isStale).
const staleSeen = `(last_seen <= ? OR source_addr <> ?)`

// isStale is staleSeen for the values a status read returned (both columns
// are NOT NULL, so the comparison means what SQL's does).
func isStale(lastSeen int64, addr string, seenBefore int64, from string) bool {
	return lastSeen <= seenBefore || addr != from
}

// DeviceStatus reads the status of the device holding the key with
// fingerprint fp: ENOTFOUND if unknown, EFORBIDDEN if a re-key replaced it.
// It is one statement, not a transaction: a single SELECT sees one snapshot
// by itself, and on SQLite it then takes no write lock, and runs on the
// connections kept for it (checkinQuerier). It always reads the database.
func (d *DB) DeviceStatus(ctx context.Context, fp string) (*DeviceStatus, error) {
	e, err := d.deviceStatus(ctx, fp)
	if err != nil {
		return nil, err
	}
	return &e.st, nil
}

// Checkin is DeviceStatus for a request from addr, which also records that
// the device was seen, as TouchDevice with every does: when nothing would
// change (seen from addr less than every ago) it costs only the read.
//
// On SQLite the status may come from memory (statusCache), which is as
// fresh as a read for a request whose nonce this DB committed after the
// request arrived, as every device request's is (see statusCache).
func (d *DB) Checkin(ctx context.Context, fp, addr string, every time.Duration) (*DeviceStatus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := d.Now().UTC()
	seenBefore := micros(now.Add(-every))
	cache := !d.Postgres()
	e, hit := cachedStatus{}, false
	if cache {
		e, hit = d.statuses.get(fp)
	}
	gen, fill := d.statuses.begin()
	if !hit {
		var err error
		if e, err = d.deviceStatus(ctx, fp); err != nil {
			return nil, err
		}
		if cache && fill {
			d.statuses.put(fp, e, gen)
		}
	}
	st := e.st
	if !isStale(e.lastSeen, e.addr, seenBefore, addr) {
		return &st, nil
	}
	if err := touchDevice(ctx, d.q, now, st.DeviceID, addr, every); err != nil {
		return &st, err
	}
	if cache {
		d.statuses.seen(fp, micros(now), addr, gen)
	}
	return &st, nil
}

func (d *DB) deviceStatus(ctx context.Context, fp string) (cachedStatus, error) {
	var e cachedStatus
	var replaced, acked sql.NullInt64
	q, qctx := d.checkinQuerier(ctx)
	err := q.QueryRowContext(qctx, statusQuery, fp).Scan(&e.st.DeviceID, &replaced, &e.st.State,
		&e.st.Name, &e.st.Fingerprint, &e.st.VerificationCode, &acked, &e.lastSeen, &e.addr)
	if err != nil {
		return e, translate(err, "device key")
	}
	if replaced.Valid {
		return e, errReplacedKey(fromMicros(replaced.Int64))
	}
	e.st.Acked = acked.Valid
	return e, nil
}

// checkinReader is an engine with connections of its own for the status
// read (SQLite's, see openCheckinReads).
type checkinReader interface{ checkinReads() querier }

// checkinQuerier is where the status read runs, and the context to run it
// with: the check-in connections where the engine has them, else the pool.
// On the check-in connections the read cannot be cancelled: it is one
// indexed lookup that takes no lock the writer holds, and for a context
// that can end, database/sql and the driver each start a goroutine per
// statement to watch it, which cost the read more than an interruption
// could ever save. A request already cancelled is refused before it.
func (d *DB) checkinQuerier(ctx context.Context) (querier, context.Context) {
	if r, ok := d.eng.(checkinReader); ok && ctx.Err() == nil {
		return r.checkinReads(), context.WithoutCancel(ctx)
	}
	return d.q, ctx
}
