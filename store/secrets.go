package store

import (
	"context"
	"fmt"
)

// ServerSecret returns the secret called name, storing fresh (when none is
// stored yet) in the same transaction. Transactions take the write lock at
// once, so of two processes starting on one database the first stores its
// value and the second reads it back: both end up with the same secret.
func (d *DB) ServerSecret(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	var v []byte
	err := d.InTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, name, fresh, micros(tx.now))
		if err != nil {
			return translate(err, "server secret")
		}
		return translate(tx.q.QueryRowContext(ctx, `SELECT value FROM server_secrets WHERE name = ?`, name).Scan(&v),
			"server secret")
	})
	if err != nil {
		// The name only: the value must never reach a log.
		return nil, fmt.Errorf("store: server secret %s: %w", name, err)
	}
	return v, nil
}
