package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gatehouse"
)

const deviceColumns = `d.id, d.state, COALESCE(d.name, ''), d.mac, d.fingerprint, d.verification_code, k.key_type, d.source_addr,
	d.first_seen, d.last_seen, d.approved_by, d.approved_at, d.reason, d.labels, d.updated_at, d.hostname, d.agent_version`

const deviceFrom = ` FROM devices d JOIN device_keys k ON k.fingerprint = d.fingerprint`

type rowScanner interface{ Scan(dest ...any) error }

// scanDevice reads deviceColumns, and into extra what the query selects
// after them.
func scanDevice(s rowScanner, extra ...any) (*gatehouse.Device, error) {
	var d gatehouse.Device
	var first, last, updated int64
	var approvedAt sql.NullInt64
	var labels string
	dest := []any{&d.ID, &d.State, &d.Name, &d.MAC, &d.Fingerprint, &d.VerificationCode, &d.KeyType, &d.SourceAddr,
		&first, &last, &d.ApprovedBy, &approvedAt, &d.Reason, &labels, &updated, &d.Hostname, &d.AgentVersion}
	if err := s.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(labels), &d.Labels); err != nil {
		return nil, fmt.Errorf("store: device labels: %w", err)
	}
	if len(d.Labels) == 0 {
		d.Labels = nil
	}
	d.FirstSeen, d.LastSeen, d.UpdatedAt = fromMicros(first), fromMicros(last), fromMicros(updated)
	d.ApprovedAt = fromNullMicros(approvedAt)
	return &d, nil
}

// CreateDevice inserts a new device together with the key it enrolled with,
// and its verification code, hostname and agent version if set.
func (tx *Tx) CreateDevice(ctx context.Context, d *gatehouse.Device, k gatehouse.DeviceKey) error {
	d.FirstSeen, d.LastSeen, d.UpdatedAt = tx.now, tx.now, tx.now
	_, err := tx.q.ExecContext(ctx, `INSERT INTO devices
		(id, state, mac, fingerprint, verification_code, source_addr, first_seen, last_seen, updated_at, hostname, agent_version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.State, d.MAC, d.Fingerprint, d.VerificationCode, d.SourceAddr, micros(tx.now), micros(tx.now), micros(tx.now),
		d.Hostname, d.AgentVersion)
	if err != nil {
		return translate(err, "device")
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO device_keys
		(fingerprint, device_id, key_type, public_key, seal_key, csr, mac, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Fingerprint, d.ID, k.KeyType, k.PublicKey, k.SealKey, k.CSR, d.MAC, micros(tx.now))
	return translate(err, "device key")
}

// FindKey returns the key with the fingerprint; ENOTFOUND if unknown,
// EFORBIDDEN if a re-key replaced it.
func (tx *Tx) FindKey(ctx context.Context, fingerprint string) (*gatehouse.DeviceKey, error) {
	k, replaced, err := tx.findKey(ctx, fingerprint)
	if err != nil {
		return nil, err
	}
	// Every device request finds its key here, so a key a re-key replaced
	// is refused at this one door.
	if replaced != nil {
		return nil, errReplacedKey(*replaced)
	}
	return k, nil
}

// UpdateKeyRequest replaces what the agent last asked for with this key: the
// HPKE key its bundle is sealed to and its CSR.
func (tx *Tx) UpdateKeyRequest(ctx context.Context, fingerprint string, sealKey []byte, csr string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE device_keys SET seal_key = ?, csr = ? WHERE fingerprint = ?`,
		sealKey, csr, fingerprint)
	return translate(err, "device key")
}

// SetAgentClaims records the hostname and agent version a device's agent
// sent with its enrollment. Unchanged ones (every restart of the same
// agent) write nothing.
func (tx *Tx) SetAgentClaims(ctx context.Context, id, hostname, agentVersion string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE devices SET hostname = ?, agent_version = ?
		WHERE id = ? AND (hostname <> ? OR agent_version <> ?)`,
		hostname, agentVersion, id, hostname, agentVersion)
	return translate(err, "device")
}

// TouchDevice records that a device was seen now from addr, unless it was
// already recorded as seen less than every ago: long polls would otherwise
// write on every round.
func (tx *Tx) TouchDevice(ctx context.Context, id, addr string, every time.Duration) error {
	return touchDevice(ctx, tx.q, tx.now, id, addr, every)
}

func touchDevice(ctx context.Context, q querier, now time.Time, id, addr string, every time.Duration) error {
	_, err := q.ExecContext(ctx, `UPDATE devices SET last_seen = ?, source_addr = ?
		WHERE id = ? AND `+staleSeen,
		micros(now), addr, id, micros(now.Add(-every)), addr)
	return translate(err, "device")
}

// Device returns one device with its provisioning steps; ENOTFOUND if unknown.
func (tx *Tx) Device(ctx context.Context, id string) (*gatehouse.Device, error) {
	d, err := scanDevice(tx.q.QueryRowContext(ctx, `SELECT `+deviceColumns+deviceFrom+` WHERE d.id = ?`, id))
	if err != nil {
		return nil, translate(err, "device "+id)
	}
	if d.Steps, err = tx.Steps(ctx, id); err != nil {
		return nil, err
	}
	return d, nil
}

// DeviceFilter selects devices. Zero fields do not filter.
type DeviceFilter struct {
	State  gatehouse.State
	Search string // substring of name, hostname, MAC or fingerprint
	// SearchCode, with Search, also matches devices whose verification
	// code holds it: Search as digits alone, which the caller works out
	// (the spacing a person types a code with is no concern of the store).
	SearchCode string
	SeenAfter  time.Time // last seen at or after
	SeenBefore time.Time // last seen before
	Sort       DeviceSort
	Offset     int
	Limit      int
}

// Devices lists devices in f.Sort's order (newest first by default) and
// the total that match the filter.
func (tx *Tx) Devices(ctx context.Context, f DeviceFilter) ([]*gatehouse.Device, int, error) {
	where, args := deviceWhere(f)
	var total int
	if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices d`+where, args...).Scan(&total); err != nil {
		return nil, 0, translate(err, "devices")
	}
	out, err := tx.DevicePage(ctx, f)
	return out, total, err
}

// DevicePage is Devices without the total, for a caller that counted
// otherwise (DeviceCounts).
func (tx *Tx) DevicePage(ctx context.Context, f DeviceFilter) ([]*gatehouse.Device, error) {
	keys, err := tx.sortKeys(f.Sort)
	if err != nil {
		return nil, err
	}
	where, args := deviceWhere(f)
	rows, err := tx.q.QueryContext(ctx, `SELECT `+deviceColumns+deviceFrom+where+orderBy(keys)+` LIMIT ? OFFSET ?`,
		append(args, noLimit(f.Limit), f.Offset)...)
	if err != nil {
		return nil, translate(err, "devices")
	}
	defer rows.Close()
	var out []*gatehouse.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, translate(err, "devices")
		}
		out = append(out, d)
	}
	return out, translate(rows.Err(), "devices")
}

func deviceWhere(f DeviceFilter) (string, []any) {
	var conds []string
	var args []any
	if f.State != "" {
		conds, args = append(conds, "d.state = ?"), append(args, f.State)
	}
	if !f.SeenAfter.IsZero() {
		conds, args = append(conds, "d.last_seen >= ?"), append(args, micros(f.SeenAfter))
	}
	if !f.SeenBefore.IsZero() {
		conds, args = append(conds, "d.last_seen < ?"), append(args, micros(f.SeenBefore))
	}
	if f.Search != "" {
		like := likePattern(f.Search)
		cond := `(lower(d.name) LIKE ? ESCAPE '\' OR lower(d.hostname) LIKE ? ESCAPE '\' OR lower(d.mac) LIKE ? ESCAPE '\' OR lower(d.fingerprint) LIKE ? ESCAPE '\'`
		args = append(args, like, like, like, like)
		if f.SearchCode != "" {
			cond += ` OR d.verification_code LIKE ? ESCAPE '\'`
			args = append(args, likePattern(f.SearchCode))
		}
		conds = append(conds, cond+")")
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// likePattern matches s anywhere, case aside, with LIKE's wildcards in s
// taken literally.
func likePattern(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(s)) + "%"
}

// DeviceUpdate changes a device. Nil fields are left as they are.
type DeviceUpdate struct {
	State      *gatehouse.State
	Name       *string
	ApprovedBy *string
	ApprovedAt *time.Time
	Reason     *string
	AckedAt    *time.Time
	Labels     map[string]string // nil leaves them; empty clears them
}

// UpdateDevice applies u to a device. A name already taken is ErrUnique.
func (tx *Tx) UpdateDevice(ctx context.Context, id string, u DeviceUpdate) error {
	sets, args := []string{"updated_at = ?"}, []any{micros(tx.now)}
	add := func(col string, v any) { sets, args = append(sets, col+" = ?"), append(args, v) }
	if u.State != nil {
		add("state", *u.State)
	}
	if u.Name != nil {
		add("name", *u.Name)
	}
	if u.ApprovedBy != nil {
		add("approved_by", *u.ApprovedBy)
	}
	if u.ApprovedAt != nil {
		add("approved_at", micros(*u.ApprovedAt))
	}
	if u.Reason != nil {
		add("reason", *u.Reason)
	}
	if u.AckedAt != nil {
		add("acked_at", micros(*u.AckedAt))
	}
	if u.Labels != nil {
		b, err := json.Marshal(u.Labels)
		if err != nil {
			return err
		}
		add("labels", string(b))
	}
	res, err := tx.q.ExecContext(ctx, `UPDATE devices SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...)
	if err != nil {
		return translate(err, "device")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "device %s not found", id)
	}
	return nil
}

// DeviceByName returns the device holding a name; ENOTFOUND if none does.
func (tx *Tx) DeviceByName(ctx context.Context, name string) (*gatehouse.Device, error) {
	d, err := scanDevice(tx.q.QueryRowContext(ctx, `SELECT `+deviceColumns+deviceFrom+` WHERE d.name = ?`, name))
	if err != nil {
		return nil, translate(err, "device named "+name)
	}
	return d, nil
}

// Acked reports whether the device confirmed receipt of its bundle.
func (tx *Tx) Acked(ctx context.Context, id string) (bool, error) {
	var at sql.NullInt64
	err := tx.q.QueryRowContext(ctx, `SELECT acked_at FROM devices WHERE id = ?`, id).Scan(&at)
	return at.Valid, translate(err, "device "+id)
}
