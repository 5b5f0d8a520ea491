package store

import (
	"context"
	"time"

	"gatehouse"
)

// Session is a browser session: whom it stands for, with the role they
// have now.
type Session struct {
	Principal gatehouse.Principal
	Expires   time.Time
}

// CreateSession stores a session for a user or a token under the hash of
// its cookie secret.
func (tx *Tx) CreateSession(ctx context.Context, hash string, p gatehouse.Principal, expires time.Time) error {
	var user, token string
	switch p.Kind {
	case gatehouse.PrincipalUser:
		user = p.ID
	case gatehouse.PrincipalToken:
		token = p.ID
	default:
		return gatehouse.Errorf(gatehouse.EINTERNAL, "session for unknown principal kind %q", p.Kind)
	}
	_, err := tx.q.ExecContext(ctx, `INSERT INTO sessions (hash, user_id, token_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, hash, nullString(user), nullString(token), micros(tx.now), micros(expires))
	return translate(err, "session")
}

// SessionByHash returns an unexpired session whose user is enabled or
// whose token is live; ENOTFOUND otherwise.
func (tx *Tx) SessionByHash(ctx context.Context, hash string) (*Session, error) {
	var s Session
	var expires int64
	var kind string
	now := micros(tx.now)
	err := tx.q.QueryRowContext(ctx, `SELECT
			CASE WHEN s.user_id IS NOT NULL THEN 'user' ELSE 'token' END,
			COALESCE(u.id, t.id), COALESCE(u.name, t.name), COALESCE(u.role, t.role), s.expires_at
		FROM sessions s
		LEFT JOIN users u ON u.id = s.user_id AND u.disabled_at IS NULL
		LEFT JOIN api_tokens t ON t.id = s.token_id AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)
		WHERE s.hash = ? AND s.expires_at > ? AND (u.id IS NOT NULL OR t.id IS NOT NULL)`, now, hash, now).
		Scan(&kind, &s.Principal.ID, &s.Principal.Name, &s.Principal.Role, &expires)
	if err != nil {
		return nil, translate(err, "session")
	}
	s.Principal.Kind, s.Expires = gatehouse.PrincipalKind(kind), fromMicros(expires)
	return &s, nil
}

// DeleteSession ends a session; ending one that does not exist is no error.
func (tx *Tx) DeleteSession(ctx context.Context, hash string) error {
	_, err := tx.q.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
	return translate(err, "session")
}

// DeleteExpiredSessions removes sessions past their expiry.
func (tx *Tx) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, micros(tx.now))
	if err != nil {
		return 0, translate(err, "sessions")
	}
	return res.RowsAffected()
}
