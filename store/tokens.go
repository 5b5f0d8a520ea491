package store

import (
	"context"
	"database/sql"

	"gatehouse"
)

const tokenColumns = `id, name, role, created_at, created_by, expires_at, revoked_at, last_used`

// CreateToken stores a token under the hash of its secret.
func (tx *Tx) CreateToken(ctx context.Context, t *gatehouse.Token, hash string) error {
	t.CreatedAt = tx.now
	_, err := tx.q.ExecContext(ctx, `INSERT INTO api_tokens (id, name, role, hash, created_at, created_by, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Role, hash, micros(tx.now), t.CreatedBy, nullMicros(t.ExpiresAt))
	return translate(err, "token")
}

// TokenByHash finds the token whose secret hashes to hash, revoked and
// expired ones included so the caller can say which; ENOTFOUND if none.
func (tx *Tx) TokenByHash(ctx context.Context, hash string) (*gatehouse.Token, error) {
	row := tx.q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = ?`, hash)
	t, err := scanToken(row)
	return t, translate(err, "token")
}

// TokenByID finds a token by id; ENOTFOUND if none.
func (tx *Tx) TokenByID(ctx context.Context, id string) (*gatehouse.Token, error) {
	row := tx.q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`, id)
	t, err := scanToken(row)
	return t, translate(err, "token")
}

// Tokens lists every token, live ones first, newest first within each.
func (tx *Tx) Tokens(ctx context.Context) ([]*gatehouse.Token, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens
		ORDER BY revoked_at IS NOT NULL, created_at DESC`)
	if err != nil {
		return nil, translate(err, "tokens")
	}
	defer rows.Close()
	var out []*gatehouse.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, translate(err, "tokens")
		}
		out = append(out, t)
	}
	return out, translate(rows.Err(), "tokens")
}

// RevokeToken marks a live token revoked and ends its browser sessions.
// ENOTFOUND if there is no such live token.
func (tx *Tx) RevokeToken(ctx context.Context, id string) error {
	res, err := tx.q.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		micros(tx.now), id)
	if err != nil {
		return translate(err, "token")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "no live token with id %s", id)
	}
	_, err = tx.q.ExecContext(ctx, `DELETE FROM sessions WHERE token_id = ?`, id)
	return translate(err, "sessions")
}

// TouchToken records that a token was used now.
func (tx *Tx) TouchToken(ctx context.Context, id string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, micros(tx.now), id)
	return translate(err, "token")
}

func scanToken(row rowScanner) (*gatehouse.Token, error) {
	var t gatehouse.Token
	var created int64
	var expires, revoked, used sql.NullInt64
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &created, &t.CreatedBy, &expires, &revoked, &used); err != nil {
		return nil, err
	}
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt, t.RevokedAt, t.LastUsed = fromNullMicros(expires), fromNullMicros(revoked), fromNullMicros(used)
	return &t, nil
}
