package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"gatehouse"
)

// CreateDecommission records who decommissioned a device, and its removal
// steps, one pending per backend.
func (tx *Tx) CreateDecommission(ctx context.Context, deviceID, actor string, from gatehouse.State, backends []string) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO decommissions (device_id, actor, at, from_state) VALUES (?, ?, ?, ?)`,
		deviceID, actor, micros(tx.now), from)
	if err != nil {
		return translate(err, "decommission")
	}
	for i, b := range backends {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO removal_steps (device_id, backend, state, position) VALUES (?, ?, ?, ?)`,
			deviceID, b, gatehouse.StepPending, i+1)
		if err != nil {
			return translate(err, "removal step")
		}
	}
	return nil
}

// Decommission returns a device's decommission with its removal steps, or
// ENOTFOUND if it was never decommissioned.
func (tx *Tx) Decommission(ctx context.Context, deviceID string) (*gatehouse.Decommission, error) {
	d := &gatehouse.Decommission{DeviceID: deviceID, Backends: []gatehouse.BackendRemoval{}}
	var at int64
	err := tx.q.QueryRowContext(ctx, `SELECT actor, at FROM decommissions WHERE device_id = ?`, deviceID).Scan(&d.By, &at)
	if err != nil {
		return nil, translate(err, "decommission")
	}
	t := fromMicros(at)
	d.At = &t
	rows, err := tx.q.QueryContext(ctx, `SELECT backend, state, attempts, last_error, note, removals, job_id, started_at, finished_at
		FROM removal_steps WHERE device_id = ? ORDER BY position, backend`, deviceID)
	if err != nil {
		return nil, translate(err, "removal steps")
	}
	defer rows.Close()
	for rows.Next() {
		r, _, err := scanRemoval(rows)
		if err != nil {
			return nil, err
		}
		d.Backends = append(d.Backends, r)
	}
	return d, translate(rows.Err(), "removal steps")
}

// RemovalStep returns one backend's removal step and the job working it.
func (tx *Tx) RemovalStep(ctx context.Context, deviceID, backend string) (gatehouse.BackendRemoval, int64, error) {
	row := tx.q.QueryRowContext(ctx, `SELECT backend, state, attempts, last_error, note, removals, job_id, started_at, finished_at
		FROM removal_steps WHERE device_id = ? AND backend = ?`, deviceID, backend)
	return scanRemoval(row)
}

func scanRemoval(s rowScanner) (gatehouse.BackendRemoval, int64, error) {
	var r gatehouse.BackendRemoval
	var removals string
	var job int64
	var started, finished sql.NullInt64
	if err := s.Scan(&r.Backend, &r.State, &r.Attempts, &r.LastError, &r.Waiting, &removals, &job, &started, &finished); err != nil {
		return r, 0, translate(err, "removal step")
	}
	if err := json.Unmarshal([]byte(removals), &r.Removals); err != nil {
		return r, 0, fmt.Errorf("store: removal receipt: %w", err)
	}
	if r.Removals == nil {
		r.Removals = []gatehouse.Removal{}
	}
	r.StartedAt, r.FinishedAt = fromNullMicros(started), fromNullMicros(finished)
	return r, job, nil
}

// SetRemovalJob records the job that works a removal step.
func (tx *Tx) SetRemovalJob(ctx context.Context, deviceID, backend string, jobID int64) error {
	return tx.execRemoval(ctx, `UPDATE removal_steps SET job_id = ? WHERE device_id = ? AND backend = ?`, jobID, deviceID, backend)
}

// StartRemoval counts an attempt and marks the step running.
func (tx *Tx) StartRemoval(ctx context.Context, deviceID, backend string) error {
	return tx.execRemoval(ctx, `UPDATE removal_steps SET state = ?, attempts = attempts + 1, note = '', started_at = ?
		WHERE device_id = ? AND backend = ?`, gatehouse.StepRunning, micros(tx.now), deviceID, backend)
}

// NoteRemoval says what a removal step waits for before it may start.
func (tx *Tx) NoteRemoval(ctx context.Context, deviceID, backend, note string) error {
	return tx.execRemoval(ctx, `UPDATE removal_steps SET note = ? WHERE device_id = ? AND backend = ?`, note, deviceID, backend)
}

// FailRemoval records why an attempt failed; the job retries it.
func (tx *Tx) FailRemoval(ctx context.Context, deviceID, backend, reason string) error {
	return tx.execRemoval(ctx, `UPDATE removal_steps SET state = ?, last_error = ?, finished_at = ?
		WHERE device_id = ? AND backend = ?`, gatehouse.StepFailed, reason, micros(tx.now), deviceID, backend)
}

// FinishRemoval records the receipt of a backend that removed everything.
func (tx *Tx) FinishRemoval(ctx context.Context, deviceID, backend string, removals []gatehouse.Removal) error {
	if removals == nil {
		removals = []gatehouse.Removal{}
	}
	b, err := json.Marshal(removals)
	if err != nil {
		return err
	}
	return tx.execRemoval(ctx, `UPDATE removal_steps SET state = ?, last_error = '', note = '', removals = ?, finished_at = ?
		WHERE device_id = ? AND backend = ?`, gatehouse.StepSucceeded, string(b), micros(tx.now), deviceID, backend)
}

func (tx *Tx) execRemoval(ctx context.Context, q string, args ...any) error {
	res, err := tx.q.ExecContext(ctx, q, args...)
	if err != nil {
		return translate(err, "removal step")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "removal step not found")
	}
	return nil
}

// ForgetDevice removes a device and everything that hangs off it (keys,
// steps, certificates, its decommission) and keeps f in its place. Its
// keys' nonces stay until they expire, as any other: they are keyed by
// expiry, not key, and still refuse a replay should the key enrol again. The timeline stays: device_events has no key to the device, and
// the forgotten record is what lets it still be read.
func (tx *Tx) ForgetDevice(ctx context.Context, f gatehouse.Forgotten) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO forgotten_devices (device_id, name, mac, fingerprint, state, forgotten_by, forgotten_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, f.DeviceID, f.Name, f.MAC, f.Fingerprint, f.State, f.By, micros(f.At))
	if err != nil {
		return translate(err, "forgotten device")
	}
	for _, q := range []string{
		`DELETE FROM device_keys WHERE device_id = ?`,
		`DELETE FROM provisioning_steps WHERE device_id = ?`,
		`DELETE FROM removal_steps WHERE device_id = ?`,
		`DELETE FROM decommissions WHERE device_id = ?`,
		`DELETE FROM certificates WHERE device_id = ?`,
		`DELETE FROM renewals WHERE device_id = ?`,
		`DELETE FROM devices WHERE id = ?`,
	} {
		if _, err := tx.q.ExecContext(ctx, q, f.DeviceID); err != nil {
			return translate(err, "devices")
		}
	}
	return nil
}

const forgottenColumns = `device_id, name, mac, fingerprint, state, forgotten_by, forgotten_at`

// ForgottenDevice returns the record of a forgotten device, or ENOTFOUND.
func (tx *Tx) ForgottenDevice(ctx context.Context, id string) (*gatehouse.Forgotten, error) {
	return scanForgotten(tx.q.QueryRowContext(ctx, `SELECT `+forgottenColumns+` FROM forgotten_devices WHERE device_id = ?`, id))
}

// LastForgotten returns the device last forgotten with this key, or failing
// that with this MAC, or ENOTFOUND.
func (tx *Tx) LastForgotten(ctx context.Context, fingerprint, mac string) (*gatehouse.Forgotten, error) {
	f, err := scanForgotten(tx.q.QueryRowContext(ctx, `SELECT `+forgottenColumns+` FROM forgotten_devices
		WHERE fingerprint = ? ORDER BY forgotten_at DESC LIMIT 1`, fingerprint))
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return f, err
	}
	return scanForgotten(tx.q.QueryRowContext(ctx, `SELECT `+forgottenColumns+` FROM forgotten_devices
		WHERE mac = ? ORDER BY forgotten_at DESC LIMIT 1`, mac))
}

func scanForgotten(s rowScanner) (*gatehouse.Forgotten, error) {
	var f gatehouse.Forgotten
	var at int64
	if err := s.Scan(&f.DeviceID, &f.Name, &f.MAC, &f.Fingerprint, &f.State, &f.By, &at); err != nil {
		return nil, translate(err, "forgotten device")
	}
	f.At = fromMicros(at)
	return &f, nil
}
