package store

import (
	"context"
	"database/sql"
	"time"

	"gatehouse"
)

const certColumns = `serial, device_id, fingerprint, origin, not_before, not_after, issued_at, revoked_at`

// AddCertificate keeps a certificate issued for a device. Adding one whose
// serial is kept already changes nothing, so a repeated step is harmless.
func (tx *Tx) AddCertificate(ctx context.Context, c gatehouse.DeviceCert) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO certificates (`+certColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (serial) DO NOTHING`,
		c.Serial, c.DeviceID, c.Fingerprint, c.Origin, micros(c.NotBefore), micros(c.NotAfter), micros(tx.now))
	return translate(err, "certificate")
}

// AddCertificateOfKey keeps a certificate issued for the key its device
// holds now, read in the same statement: a step that finishes keeps its
// certificate without reading the device for its fingerprint.
func (tx *Tx) AddCertificateOfKey(ctx context.Context, c gatehouse.DeviceCert) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO certificates (`+certColumns+`)
		SELECT ?, id, fingerprint, ?, ?, ?, ?, NULL FROM devices WHERE id = ? ON CONFLICT (serial) DO NOTHING`,
		c.Serial, c.Origin, micros(c.NotBefore), micros(c.NotAfter), micros(tx.now), c.DeviceID)
	return translate(err, "certificate")
}

// Certificates lists a device's certificates, newest first.
func (tx *Tx) Certificates(ctx context.Context, deviceID string) ([]gatehouse.DeviceCert, error) {
	return tx.queryCerts(ctx, `SELECT `+certColumns+` FROM certificates WHERE device_id = ?
		ORDER BY issued_at DESC, not_after DESC`, deviceID)
}

// MarkCertRevoked records that the PKI revoked a certificate; marking it
// again keeps the first time.
func (tx *Tx) MarkCertRevoked(ctx context.Context, serial string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE certificates SET revoked_at = ? WHERE serial = ? AND revoked_at IS NULL`,
		micros(tx.now), serial)
	return translate(err, "certificate")
}

// CertsExpiring lists certificates not revoked that expire before the
// given time, soonest first, at most limit of them.
func (tx *Tx) CertsExpiring(ctx context.Context, before time.Time, limit int) ([]gatehouse.DeviceCert, error) {
	return tx.queryCerts(ctx, `SELECT `+certColumns+` FROM certificates
		WHERE revoked_at IS NULL AND not_after < ? ORDER BY not_after LIMIT ?`, micros(before), limit)
}

func (tx *Tx) queryCerts(ctx context.Context, q string, args ...any) ([]gatehouse.DeviceCert, error) {
	rows, err := tx.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "certificates")
	}
	defer rows.Close()
	var out []gatehouse.DeviceCert
	for rows.Next() {
		var c gatehouse.DeviceCert
		var nb, na, at int64
		var revoked sql.NullInt64
		if err := rows.Scan(&c.Serial, &c.DeviceID, &c.Fingerprint, &c.Origin, &nb, &na, &at, &revoked); err != nil {
			return nil, translate(err, "certificate")
		}
		c.NotBefore, c.NotAfter, c.IssuedAt = fromMicros(nb), fromMicros(na), fromMicros(at)
		c.RevokedAt = fromNullMicros(revoked)
		out = append(out, c)
	}
	return out, translate(rows.Err(), "certificates")
}
