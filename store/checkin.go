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
	// stale: TouchDevice, given the addr and every of the read, would write.
	stale bool
}

// statusQuery finds a key's device and the columns its status needs. The
// last column is staleSeen, so whether a wait must note the device seen is
// decided by the same condition touchDevice writes under.
const statusQuery = `SELECT k.device_id, k.replaced_at, d.state, COALESCE(d.name, ''), d.fingerprint,
	d.verification_code, d.acked_at, CASE WHEN ` + staleSeen + ` THEN 1 ELSE 0 END
	FROM device_keys k JOIN devices d ON d.id = k.device_id WHERE k.fingerprint = ?`

// staleSeen holds for a device row whose last_seen is at or before its
// first argument or whose source_addr is not its second: one touchDevice
// updates. Its columns are unqualified so both statements can use it; no
// other table the status reads has them.
const staleSeen = `(last_seen <= ? OR source_addr <> ?)`

// DeviceStatus reads the status of the device holding the key with
// fingerprint fp: ENOTFOUND if unknown, EFORBIDDEN if a re-key replaced it.
// It is one statement, not a transaction: a single SELECT sees one snapshot
// by itself, and on SQLite it then takes no write lock, and runs on the
// connections kept for it (checkinQuerier).
func (d *DB) DeviceStatus(ctx context.Context, fp string) (*DeviceStatus, error) {
	return d.deviceStatus(ctx, fp, "", 0)
}

// Checkin is DeviceStatus for a request from addr, which also records that
// the device was seen, as TouchDevice with every does: when nothing would
// change (seen from addr less than every ago) it costs only the read.
func (d *DB) Checkin(ctx context.Context, fp, addr string, every time.Duration) (*DeviceStatus, error) {
	now := d.Now().UTC()
	st, err := d.deviceStatus(ctx, fp, addr, micros(now.Add(-every)))
	if err != nil || !st.stale {
		return st, err
	}
	return st, touchDevice(ctx, d.q, now, st.DeviceID, addr, every)
}

func (d *DB) deviceStatus(ctx context.Context, fp, addr string, seenBefore int64) (*DeviceStatus, error) {
	var st DeviceStatus
	var replaced, acked sql.NullInt64
	var stale int64
	q, qctx := d.checkinQuerier(ctx)
	err := q.QueryRowContext(qctx, statusQuery, seenBefore, addr, fp).Scan(&st.DeviceID, &replaced, &st.State,
		&st.Name, &st.Fingerprint, &st.VerificationCode, &acked, &stale)
	if err != nil {
		return nil, translate(err, "device key")
	}
	if replaced.Valid {
		return nil, errReplacedKey(fromMicros(replaced.Int64))
	}
	st.Acked, st.stale = acked.Valid, stale == 1
	return &st, nil
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
