package store

import (
	"context"
	"time"

	"gatehouse"
)

// Session is a browser session: whose token it stands for, and the CSRF
// token its page must send with every change.
type Session struct {
	Token   gatehouse.Token
	CSRF    string
	Expires time.Time
}

// CreateSession stores a session under the hash of its cookie secret.
func (tx *Tx) CreateSession(ctx context.Context, hash, tokenID, csrf string, expires time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO sessions (hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		hash, tokenID, csrf, micros(tx.now), micros(expires))
	return translate(err, "session")
}

// SessionByHash returns an unexpired session; ENOTFOUND otherwise.
func (tx *Tx) SessionByHash(ctx context.Context, hash string) (*Session, error) {
	var s Session
	var created, expires int64
	err := tx.tx.QueryRowContext(ctx, `SELECT t.id, t.name, t.role, t.created_at, s.csrf, s.expires_at
		FROM sessions s JOIN api_tokens t ON t.id = s.token_id WHERE s.hash = ? AND s.expires_at > ?`, hash, micros(tx.now)).
		Scan(&s.Token.ID, &s.Token.Name, &s.Token.Role, &created, &s.CSRF, &expires)
	if err != nil {
		return nil, translate(err, "session")
	}
	s.Token.CreatedAt, s.Expires = fromMicros(created), fromMicros(expires)
	return &s, nil
}

// DeleteSession ends a session; ending one that does not exist is no error.
func (tx *Tx) DeleteSession(ctx context.Context, hash string) error {
	_, err := tx.tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
	return translate(err, "session")
}

// DeleteExpiredSessions removes sessions past their expiry.
func (tx *Tx) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, micros(tx.now))
	if err != nil {
		return 0, translate(err, "sessions")
	}
	return res.RowsAffected()
}
