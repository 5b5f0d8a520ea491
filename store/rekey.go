package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"gatehouse"
)

// findKey reads a key whatever became of it, with when a re-key replaced
// it (nil while it is current).
func (tx *Tx) findKey(ctx context.Context, fingerprint string) (*gatehouse.DeviceKey, *time.Time, error) {
	var k gatehouse.DeviceKey
	var replaced sql.NullInt64
	err := tx.q.QueryRowContext(ctx, `SELECT fingerprint, device_id, key_type, public_key, seal_key, csr, replaced_at
		FROM device_keys WHERE fingerprint = ?`, fingerprint).
		Scan(&k.Fingerprint, &k.DeviceID, &k.KeyType, &k.PublicKey, &k.SealKey, &k.CSR, &replaced)
	if err != nil {
		return nil, nil, translate(err, "device key")
	}
	return &k, fromNullMicros(replaced), nil
}

func errReplacedKey(at time.Time) error {
	return gatehouse.Errorf(gatehouse.EFORBIDDEN,
		"this key was replaced by a re-key of its gateway on %s: the gateway now uses its new key, and this one is refused",
		at.Format(time.RFC3339))
}

// ReplacedKey returns a key a re-key replaced (or any key), for the step
// that moves the gateway's objects off it; ENOTFOUND if unknown.
func (tx *Tx) ReplacedKey(ctx context.Context, fingerprint string) (*gatehouse.DeviceKey, error) {
	k, _, err := tx.findKey(ctx, fingerprint)
	return k, err
}

// rekeyTargetStates are the states of a gateway an operator has approved
// and not retired: a new key with its MAC is a re-key candidate.
var rekeyTargetStates = []gatehouse.State{
	gatehouse.StateApproved, gatehouse.StateProvisioning, gatehouse.StateProvisioned,
	gatehouse.StateConfigured, gatehouse.StateFailed, gatehouse.StateStalled,
}

// RekeyTarget returns the id of the approved gateway holding mac, the most
// recently approved if several do; ENOTFOUND if none.
func (tx *Tx) RekeyTarget(ctx context.Context, mac string) (string, error) {
	args := []any{mac}
	for _, s := range rekeyTargetStates {
		args = append(args, s)
	}
	var id string
	err := tx.q.QueryRowContext(ctx, `SELECT id FROM devices WHERE mac = ? AND state IN (?`+
		strings.Repeat(", ?", len(rekeyTargetStates)-1)+`) ORDER BY approved_at DESC, id LIMIT 1`, args...).Scan(&id)
	return id, translate(err, "gateway with mac "+mac)
}

// SetRekeyOf marks a pending device as a candidate to replace the key of
// the gateway target.
func (tx *Tx) SetRekeyOf(ctx context.Context, id, target string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE devices SET rekey_of = ? WHERE id = ?`, target, id)
	return translate(err, "device")
}

// RekeyTargets returns, for those of ids that are re-key candidates, the
// gateway each would replace the key of. A gateway decommissioned since is
// no longer one: its candidates are ordinary devices.
func (tx *Tx) RekeyTargets(ctx context.Context, ids []string) (map[string]gatehouse.RekeyTarget, error) {
	out := map[string]gatehouse.RekeyTarget{}
	err := tx.eachIn(ctx, `SELECT c.id, t.id, COALESCE(t.name, ''), t.state FROM devices c
		JOIN devices t ON t.id = c.rekey_of WHERE c.id IN `, ids, func(rows rowScanner) error {
		var c string
		var t gatehouse.RekeyTarget
		if err := rows.Scan(&c, &t.ID, &t.Name, &t.State); err != nil {
			return err
		}
		if slices.Contains(rekeyTargetStates, t.State) {
			out[c] = t
		}
		return nil
	})
	return out, err
}

// RekeyCandidates returns, for those of ids that have pending re-key
// candidates, the candidates' ids, oldest first.
func (tx *Tx) RekeyCandidates(ctx context.Context, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	err := tx.eachIn(ctx, `SELECT rekey_of, id FROM devices WHERE state = 'pending' AND rekey_of IN `, ids,
		func(rows rowScanner) error {
			var t, c string
			if err := rows.Scan(&t, &c); err != nil {
				return err
			}
			out[t] = append(out[t], c)
			return nil
		}, " ORDER BY first_seen, id")
	return out, err
}

// eachIn runs q with "(?, ...)" for ids appended (then tail) and visits
// every row.
func (tx *Tx) eachIn(ctx context.Context, q string, ids []string, visit func(rowScanner) error, tail ...string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	rows, err := tx.q.QueryContext(ctx, q+in+strings.Join(tail, ""), args...)
	if err != nil {
		return translate(err, "devices")
	}
	defer rows.Close()
	for rows.Next() {
		if err := visit(rows); err != nil {
			return translate(err, "devices")
		}
	}
	return translate(rows.Err(), "devices")
}

// AdoptKey moves a re-key candidate's key onto the gateway it replaces the
// key of: the gateway's current key is marked replaced, the candidate's
// key becomes the gateway's (with its code, address, last contact and what
// its agent said of itself), its timeline joins the gateway's, and the
// candidate row goes. The gateway's bundle is unacknowledged again, to be
// delivered to the new key.
func (tx *Tx) AdoptKey(ctx context.Context, gatewayID string, cand *gatehouse.Device) error {
	now := micros(tx.now)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE device_keys SET replaced_at = ? WHERE device_id = ? AND replaced_at IS NULL`, []any{now, gatewayID}},
		{`UPDATE device_keys SET device_id = ? WHERE device_id = ?`, []any{gatewayID, cand.ID}},
		{`UPDATE devices SET fingerprint = ?, verification_code = ?, source_addr = ?, last_seen = ?, acked_at = NULL,
			reason = '', updated_at = ?, hostname = ?, agent_version = ? WHERE id = ?`,
			[]any{cand.Fingerprint, cand.VerificationCode, cand.SourceAddr, micros(cand.LastSeen), now,
				cand.Hostname, cand.AgentVersion, gatewayID}},
		{`UPDATE device_events SET device_id = ? WHERE device_id = ?`, []any{gatewayID, cand.ID}},
		{`UPDATE devices SET rekey_of = NULL WHERE rekey_of = ? AND id = ?`, []any{gatewayID, cand.ID}},
		{`DELETE FROM devices WHERE id = ?`, []any{cand.ID}},
	} {
		if _, err := tx.q.ExecContext(ctx, q.sql, q.args...); err != nil {
			return translate(err, "re-key")
		}
	}
	return nil
}

// RestartStep makes a step pending again for a new run (its attempts
// counted afresh), keeping its output (what the backend holds for the
// gateway) and dropping its sealed fields.
func (tx *Tx) RestartStep(ctx context.Context, deviceID string, name gatehouse.StepName) error {
	return tx.execStep(ctx, `UPDATE provisioning_steps SET state = ?, attempts = 0, last_error = '', started_at = NULL,
		finished_at = NULL, sealed = '{}' WHERE device_id = ? AND step = ?`, gatehouse.StepPending, deviceID, name)
}
