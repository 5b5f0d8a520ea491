package store

import (
	"context"
	"strings"
)

// Uncoded is a device whose verification code is not stored yet.
type Uncoded struct{ ID, Fingerprint string }

// UncodedDevices returns up to limit devices with no stored verification
// code: those enrolled before codes were stored, or seeded.
func (tx *Tx) UncodedDevices(ctx context.Context, limit int) ([]Uncoded, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT id, fingerprint FROM devices WHERE verification_code = '' LIMIT ?`, limit)
	if err != nil {
		return nil, translate(err, "devices")
	}
	defer rows.Close()
	var out []Uncoded
	for rows.Next() {
		var u Uncoded
		if err := rows.Scan(&u.ID, &u.Fingerprint); err != nil {
			return nil, translate(err, "devices")
		}
		out = append(out, u)
	}
	return out, translate(rows.Err(), "devices")
}

// SetVerificationCode stores a device's verification code.
func (tx *Tx) SetVerificationCode(ctx context.Context, id, code string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE devices SET verification_code = ? WHERE id = ?`, code, id)
	return translate(err, "device")
}

// PeerField is a column pending devices are compared on.
type PeerField string

// Fields that, shared among pending devices, deserve an operator's attention.
const (
	PeerMAC  PeerField = "mac"
	PeerCode PeerField = "verification_code"
)

// PendingPeers returns, for each of values, the ids of pending devices whose
// field holds it, newest first and at most perValue of them: enough to name
// them, and bounded however many a flood enrolls. Empty values never match.
func (tx *Tx) PendingPeers(ctx context.Context, field PeerField, values []string, perValue int) (map[string][]string, error) {
	out := map[string][]string{}
	if len(values) == 0 {
		return out, nil
	}
	col := string(field) // one of the constants above, never input
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")
	args := make([]any, 0, len(values)+1)
	for _, v := range values {
		args = append(args, v)
	}
	rows, err := tx.q.QueryContext(ctx, `SELECT id, v FROM (
		SELECT id, `+col+` AS v, ROW_NUMBER() OVER (PARTITION BY `+col+` ORDER BY first_seen DESC, id) AS n
		FROM devices WHERE state = 'pending' AND `+col+` IN (`+marks+`) AND `+col+` <> ''
	) AS ranked WHERE n <= ? ORDER BY v, n`, append(args, perValue)...)
	if err != nil {
		return nil, translate(err, "devices")
	}
	defer rows.Close()
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			return nil, translate(err, "devices")
		}
		out[v] = append(out[v], id)
	}
	return out, translate(rows.Err(), "devices")
}
