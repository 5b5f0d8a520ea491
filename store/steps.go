package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"gatehouse"
)

// CreateSteps adds pending provisioning steps for a device.
func (tx *Tx) CreateSteps(ctx context.Context, deviceID string, names []gatehouse.StepName) error {
	for _, n := range names {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO provisioning_steps (device_id, step, state) VALUES (?, ?, ?)`,
			deviceID, n, gatehouse.StepPending)
		if err != nil {
			return translate(err, "provisioning step")
		}
	}
	return nil
}

// EnsureStep creates a pending step unless the device has it already. It
// never fails on the step being there: on PostgreSQL a failed statement
// would end the caller's transaction.
func (tx *Tx) EnsureStep(ctx context.Context, deviceID string, name gatehouse.StepName) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO provisioning_steps (device_id, step, state) VALUES (?, ?, ?)
		ON CONFLICT (device_id, step) DO NOTHING`, deviceID, name, gatehouse.StepPending)
	return translate(err, "provisioning step")
}

// Steps lists a device's provisioning steps in a stable order.
func (tx *Tx) Steps(ctx context.Context, deviceID string) ([]gatehouse.Step, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT step, state, attempts, last_error, started_at, finished_at, output, sealed, job_id
		FROM provisioning_steps WHERE device_id = ? ORDER BY step`, deviceID)
	if err != nil {
		return nil, translate(err, "provisioning steps")
	}
	defer rows.Close()
	var out []gatehouse.Step
	for rows.Next() {
		s, err := scanStep(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, translate(rows.Err(), "provisioning steps")
}

// StepsOf lists the provisioning steps of several devices at once, for a
// page of a device list.
func (tx *Tx) StepsOf(ctx context.Context, ids []string) (map[string][]gatehouse.Step, error) {
	out := make(map[string][]gatehouse.Step, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.q.QueryContext(ctx, `SELECT device_id, step, state, attempts, last_error, started_at, finished_at, output, sealed, job_id
		FROM provisioning_steps WHERE device_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY device_id, step`, args...)
	if err != nil {
		return nil, translate(err, "provisioning steps")
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		st, err := scanStep(prefixed{&id, rows})
		if err != nil {
			return nil, err
		}
		out[id] = append(out[id], st)
	}
	return out, translate(rows.Err(), "provisioning steps")
}

// StepStates returns a device's state and reason with the name and state of
// each of its steps, not their outputs or sealed fields: what settling the
// device after a step needs, read in one statement.
func (tx *Tx) StepStates(ctx context.Context, deviceID string) (gatehouse.State, string, []gatehouse.Step, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT d.state, d.reason, COALESCE(s.step, ''), COALESCE(s.state, '')
		FROM devices d LEFT JOIN provisioning_steps s ON s.device_id = d.id WHERE d.id = ? ORDER BY s.step`, deviceID)
	if err != nil {
		return "", "", nil, translate(err, "provisioning steps")
	}
	defer rows.Close()
	var state gatehouse.State
	var reason string
	var steps []gatehouse.Step
	found := false
	for rows.Next() {
		var st gatehouse.Step
		if err := rows.Scan(&state, &reason, &st.Name, &st.State); err != nil {
			return "", "", nil, translate(err, "provisioning step")
		}
		found = true
		if st.Name != "" {
			steps = append(steps, st)
		}
	}
	if err := rows.Err(); err != nil {
		return "", "", nil, translate(err, "provisioning steps")
	}
	if !found {
		return "", "", nil, gatehouse.Errorf(gatehouse.ENOTFOUND, "device %s not found", deviceID)
	}
	return state, reason, steps, nil
}

// prefixed scans a leading column into first before the step's columns.
type prefixed struct {
	first *string
	rows  rowScanner
}

func (p prefixed) Scan(dest ...any) error { return p.rows.Scan(append([]any{p.first}, dest...)...) }

func scanStep(s rowScanner) (gatehouse.Step, error) {
	var st gatehouse.Step
	var started, finished sql.NullInt64
	var output, sealed string
	if err := s.Scan(&st.Name, &st.State, &st.Attempts, &st.LastError, &started, &finished, &output, &sealed, &st.JobID); err != nil {
		return st, translate(err, "provisioning step")
	}
	st.StartedAt, st.FinishedAt = fromNullMicros(started), fromNullMicros(finished)
	if err := json.Unmarshal([]byte(output), &st.Output); err != nil {
		return st, fmt.Errorf("store: step output: %w", err)
	}
	if err := json.Unmarshal([]byte(sealed), &st.Sealed); err != nil {
		return st, fmt.Errorf("store: step sealed fields: %w", err)
	}
	return st, nil
}

// StartStep marks a step running and counts the attempt.
func (tx *Tx) StartStep(ctx context.Context, deviceID string, name gatehouse.StepName) error {
	return tx.execStep(ctx, `UPDATE provisioning_steps SET state = ?, attempts = attempts + 1, started_at = ?, finished_at = NULL
		WHERE device_id = ? AND step = ?`, gatehouse.StepRunning, micros(tx.now), deviceID, name)
}

// FailStep records why a step's attempt failed; it will be retried.
func (tx *Tx) FailStep(ctx context.Context, deviceID string, name gatehouse.StepName, reason string) error {
	return tx.execStep(ctx, `UPDATE provisioning_steps SET state = ?, last_error = ?, finished_at = ?
		WHERE device_id = ? AND step = ?`, gatehouse.StepFailed, reason, micros(tx.now), deviceID, name)
}

// FinishStep records a step's success with its public output and its sealed
// secret fields.
func (tx *Tx) FinishStep(ctx context.Context, deviceID string, name gatehouse.StepName, output map[string]string, sealed map[string][]byte) error {
	out, err := json.Marshal(output)
	if err != nil {
		return err
	}
	sl, err := json.Marshal(sealed)
	if err != nil {
		return err
	}
	return tx.execStep(ctx, `UPDATE provisioning_steps SET state = ?, last_error = '', finished_at = ?, output = ?, sealed = ?
		WHERE device_id = ? AND step = ?`, gatehouse.StepSucceeded, micros(tx.now), string(out), string(sl), deviceID, name)
}

// NoteStep records what a running step is waiting for, without failing it.
func (tx *Tx) NoteStep(ctx context.Context, deviceID string, name gatehouse.StepName, note string) error {
	return tx.execStep(ctx, `UPDATE provisioning_steps SET last_error = ? WHERE device_id = ? AND step = ?`, note, deviceID, name)
}

// SetStepJob records which job works a step.
func (tx *Tx) SetStepJob(ctx context.Context, deviceID string, name gatehouse.StepName, jobID int64) error {
	return tx.execStep(ctx, `UPDATE provisioning_steps SET job_id = ? WHERE device_id = ? AND step = ?`, jobID, deviceID, name)
}

// ClearSealed deletes every sealed secret of a device once it has them.
func (tx *Tx) ClearSealed(ctx context.Context, deviceID string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE provisioning_steps SET sealed = '{}' WHERE device_id = ?`, deviceID)
	return translate(err, "provisioning steps")
}

func (tx *Tx) execStep(ctx context.Context, q string, args ...any) error {
	res, err := tx.q.ExecContext(ctx, q, args...)
	if err != nil {
		return translate(err, "provisioning step")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "provisioning step not found")
	}
	return nil
}

// MergeStepOutput merges kv into a step's output; an empty value deletes
// its key.
func (tx *Tx) MergeStepOutput(ctx context.Context, deviceID string, name gatehouse.StepName, kv map[string]string) error {
	var raw string
	err := tx.q.QueryRowContext(ctx, `SELECT output FROM provisioning_steps WHERE device_id = ? AND step = ?`, deviceID, name).Scan(&raw)
	if err != nil {
		return translate(err, "provisioning step")
	}
	out := map[string]string{}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return fmt.Errorf("store: step output: %w", err)
	}
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range kv {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return tx.execStep(ctx, `UPDATE provisioning_steps SET output = ? WHERE device_id = ? AND step = ?`, string(b), deviceID, name)
}

// ResetStep makes a finished step due again, keeping its output, so a
// change that needs it redone (new labels for the manifest) reruns it.
func (tx *Tx) ResetStep(ctx context.Context, deviceID string, name gatehouse.StepName) error {
	return tx.execStep(ctx, `UPDATE provisioning_steps SET state = ?, last_error = '', finished_at = NULL
		WHERE device_id = ? AND step = ?`, gatehouse.StepPending, deviceID, name)
}
