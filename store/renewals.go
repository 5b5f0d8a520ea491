package store

import (
	"context"
	"database/sql"
	"time"
)

// Renewal is a certificate renewal a gateway asked for and has not
// confirmed: see migration 0015. Serial is empty until the PKI answered.
type Renewal struct {
	DeviceID     string
	Fingerprint  string // the key that asked
	SealKey      []byte // what SealedKey is sealed to
	Replaces     string // serial of the certificate being renewed
	StartedAt    time.Time
	ClaimedUntil time.Time
	Serial       string
	Certificate  string
	CAChain      string
	SealedKey    []byte // issue mode: the new private key, sealed
}

const renewalColumns = `device_id, fingerprint, seal_key, replaces, started_at, claimed_until,
	serial, certificate, ca_chain, sealed_key`

// Renewal returns a device's outstanding renewal; ENOTFOUND if none.
func (tx *Tx) Renewal(ctx context.Context, deviceID string) (*Renewal, error) {
	var r Renewal
	var started, claimed int64
	var serial, cert, chain sql.NullString
	err := tx.q.QueryRowContext(ctx, `SELECT `+renewalColumns+` FROM renewals WHERE device_id = ?`, deviceID).
		Scan(&r.DeviceID, &r.Fingerprint, &r.SealKey, &r.Replaces, &started, &claimed, &serial, &cert, &chain, &r.SealedKey)
	if err != nil {
		return nil, translate(err, "renewal")
	}
	r.StartedAt, r.ClaimedUntil = fromMicros(started), fromMicros(claimed)
	r.Serial, r.Certificate, r.CAChain = serial.String, cert.String, chain.String
	return &r, nil
}

// PutRenewal stores a device's renewal, replacing the one it had.
func (tx *Tx) PutRenewal(ctx context.Context, r Renewal) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO renewals (`+renewalColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET fingerprint = excluded.fingerprint, seal_key = excluded.seal_key,
			replaces = excluded.replaces, started_at = excluded.started_at, claimed_until = excluded.claimed_until,
			serial = excluded.serial, certificate = excluded.certificate, ca_chain = excluded.ca_chain,
			sealed_key = excluded.sealed_key`,
		r.DeviceID, r.Fingerprint, r.SealKey, r.Replaces, micros(r.StartedAt), micros(r.ClaimedUntil),
		nullString(r.Serial), nullString(r.Certificate), nullString(r.CAChain), r.SealedKey)
	return translate(err, "renewal")
}

// DeleteRenewal forgets a device's renewal; none is not an error.
func (tx *Tx) DeleteRenewal(ctx context.Context, deviceID string) error {
	_, err := tx.q.ExecContext(ctx, `DELETE FROM renewals WHERE device_id = ?`, deviceID)
	return translate(err, "renewal")
}
