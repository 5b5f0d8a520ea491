package store

import (
	"context"
	"database/sql"

	"gatehouse"
)

// CreateToken stores a token under the hash of its secret.
func (tx *Tx) CreateToken(ctx context.Context, t *gatehouse.Token, hash string) error {
	t.CreatedAt = tx.now
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO api_tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Role, hash, micros(tx.now))
	return translate(err, "token")
}

// TokenByHash finds the token whose secret hashes to hash; ENOTFOUND if none.
func (tx *Tx) TokenByHash(ctx context.Context, hash string) (*gatehouse.Token, error) {
	var t gatehouse.Token
	var created int64
	var used sql.NullInt64
	err := tx.tx.QueryRowContext(ctx, `SELECT id, name, role, created_at, last_used FROM api_tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.Name, &t.Role, &created, &used)
	if err != nil {
		return nil, translate(err, "token")
	}
	t.CreatedAt, t.LastUsed = fromMicros(created), fromNullMicros(used)
	return &t, nil
}

// TouchToken records that a token was used now.
func (tx *Tx) TouchToken(ctx context.Context, id string) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, micros(tx.now), id)
	return translate(err, "token")
}
