package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"gatehouse"
)

const allowlistColumns = `mac, name, labels, imported_by, imported_at, COALESCE(device_id, ''), COALESCE(fingerprint, ''), used_at`

func scanAllowlist(s rowScanner) (*gatehouse.AllowlistEntry, error) {
	var e gatehouse.AllowlistEntry
	var labels string
	var at int64
	var used sql.NullInt64
	if err := s.Scan(&e.MAC, &e.Name, &labels, &e.ImportedBy, &at, &e.DeviceID, &e.Fingerprint, &used); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &e.Labels); err != nil {
		return nil, fmt.Errorf("store: allowlist labels: %w", err)
	}
	if len(e.Labels) == 0 {
		e.Labels = nil
	}
	e.ImportedAt, e.UsedAt = fromMicros(at), fromNullMicros(used)
	return &e, nil
}

// AddAllowlistEntry lists a gateway. A MAC or name listed already is
// ErrUnique; ImportedAt is the transaction's time.
func (tx *Tx) AddAllowlistEntry(ctx context.Context, e *gatehouse.AllowlistEntry) error {
	labels := e.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return err
	}
	e.ImportedAt = tx.now
	_, err = tx.q.ExecContext(ctx, `INSERT INTO allowlist (mac, name, labels, imported_by, imported_at) VALUES (?, ?, ?, ?, ?)`,
		e.MAC, e.Name, string(b), e.ImportedBy, micros(tx.now))
	return translate(err, "allowlist entry")
}

// AllowlistEntry returns the entry of a MAC; ENOTFOUND if it is not listed.
func (tx *Tx) AllowlistEntry(ctx context.Context, mac string) (*gatehouse.AllowlistEntry, error) {
	return tx.oneAllowlist(ctx, "mac", mac, "MAC "+mac+" on the allowlist")
}

// AllowlistByName returns the entry listing a name; ENOTFOUND if none does.
func (tx *Tx) AllowlistByName(ctx context.Context, name string) (*gatehouse.AllowlistEntry, error) {
	return tx.oneAllowlist(ctx, "name", name, "name "+name+" on the allowlist")
}

// AllowlistByDevice returns the entry pinned to a device; ENOTFOUND if none is.
func (tx *Tx) AllowlistByDevice(ctx context.Context, deviceID string) (*gatehouse.AllowlistEntry, error) {
	return tx.oneAllowlist(ctx, "device_id", deviceID, "allowlist entry of device "+deviceID)
}

func (tx *Tx) oneAllowlist(ctx context.Context, col, v, what string) (*gatehouse.AllowlistEntry, error) {
	e, err := scanAllowlist(tx.q.QueryRowContext(ctx, `SELECT `+allowlistColumns+` FROM allowlist WHERE `+col+` = ?`, v))
	if err != nil {
		return nil, translate(err, what)
	}
	return e, nil
}

// Allowlist returns a page of entries in MAC order and how many there are.
// A limit of 0 or less returns them all.
func (tx *Tx) Allowlist(ctx context.Context, offset, limit int) ([]gatehouse.AllowlistEntry, int, error) {
	var total int
	if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM allowlist`).Scan(&total); err != nil {
		return nil, 0, translate(err, "allowlist")
	}
	rows, err := tx.q.QueryContext(ctx, `SELECT `+allowlistColumns+` FROM allowlist ORDER BY mac LIMIT ? OFFSET ?`, noLimit(limit), offset)
	if err != nil {
		return nil, 0, translate(err, "allowlist")
	}
	defer rows.Close()
	var out []gatehouse.AllowlistEntry
	for rows.Next() {
		e, err := scanAllowlist(rows)
		if err != nil {
			return nil, 0, translate(err, "allowlist")
		}
		out = append(out, *e)
	}
	return out, total, translate(rows.Err(), "allowlist")
}

// DeleteAllowlistEntry removes the entry of a MAC; ENOTFOUND if none.
func (tx *Tx) DeleteAllowlistEntry(ctx context.Context, mac string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM allowlist WHERE mac = ?`, mac)
	if err != nil {
		return translate(err, "allowlist entry")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "MAC %s is not on the allowlist", mac)
	}
	return nil
}

// ClaimAllowlistEntry pins the unused entry of a MAC to a device and its
// key. It reports false, changing nothing, when the MAC is not listed or
// its entry is pinned already: only the first key ever claims an entry.
func (tx *Tx) ClaimAllowlistEntry(ctx context.Context, mac, deviceID, fingerprint string) (bool, error) {
	res, err := tx.q.ExecContext(ctx, `UPDATE allowlist SET device_id = ?, fingerprint = ?, used_at = ?
		WHERE mac = ? AND device_id IS NULL`, deviceID, fingerprint, micros(tx.now), mac)
	if err != nil {
		return false, translate(err, "allowlist entry")
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err, "allowlist entry")
}

// DeviceWithMAC returns the id of a device other than except that enrolled
// with a MAC, by any of its keys; "" if there is none.
func (tx *Tx) DeviceWithMAC(ctx context.Context, mac, except string) (string, error) {
	var id string
	err := tx.q.QueryRowContext(ctx, `SELECT id FROM (
		SELECT id FROM devices WHERE mac = ? AND id <> ?
		UNION SELECT device_id FROM device_keys WHERE mac = ? AND device_id <> ?) AS enrolled LIMIT 1`,
		mac, except, mac, except).Scan(&id)
	if err == sql.ErrNoRows {
		return "", nil
	}
	return id, translate(err, "devices of MAC "+mac)
}
