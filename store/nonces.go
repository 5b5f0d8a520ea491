package store

import (
	"context"
	"time"
)

// UseNonce records that key (a device key fingerprint) used nonce, valid
// until expires, and reports whether this was the first use. It is one
// statement outside any transaction, because it runs on every device request
// and the SQLite pool has a single connection: the primary key decides
// atomically, across processes, which of two racing requests wins. A row
// that has expired but not yet been pruned counts as unused and is renewed.
func (d *DB) UseNonce(ctx context.Context, key, nonce string, expires time.Time) (bool, error) {
	res, err := d.q.ExecContext(ctx, `INSERT INTO nonces (fingerprint, nonce, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (fingerprint, nonce) DO UPDATE SET expires_at = excluded.expires_at
		WHERE nonces.expires_at <= ?`, key, nonce, micros(expires), micros(d.Now()))
	if err != nil {
		return false, translate(err, "nonce")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, translate(err, "nonce")
	}
	return n == 1, nil
}

// DeleteExpiredNonces removes up to limit expired nonces and returns how many
// went. Callers loop in batches so no single statement holds the one
// connection for long while device requests wait.
func (d *DB) DeleteExpiredNonces(ctx context.Context, limit int) (int64, error) {
	res, err := d.q.ExecContext(ctx, `DELETE FROM nonces WHERE (fingerprint, nonce) IN
		(SELECT fingerprint, nonce FROM nonces WHERE expires_at <= ? LIMIT ?)`, micros(d.Now()), limit)
	if err != nil {
		return 0, translate(err, "nonces")
	}
	return res.RowsAffected()
}
