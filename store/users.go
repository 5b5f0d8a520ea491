package store

import (
	"context"
	"database/sql"

	"gatehouse"
)

const userColumns = `id, name, role, source, created_at, last_login, disabled_at`

// UserRecord is a user with what only the store and the login code see.
type UserRecord struct {
	gatehouse.User
	PasswordHash string // argon2id PHC string; "" for OIDC users
	Subject      string // "issuer|sub" for OIDC users
}

// CreateUser stores a new user; ErrUnique if the name (or subject) is taken.
func (tx *Tx) CreateUser(ctx context.Context, u *UserRecord) error {
	u.CreatedAt = tx.now
	_, err := tx.q.ExecContext(ctx, `INSERT INTO users (id, name, role, source, password_hash, subject, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.Role, u.Source, u.PasswordHash, nullString(u.Subject), micros(tx.now))
	return translate(err, "user")
}

// UserByName finds a user by name; ENOTFOUND if none.
func (tx *Tx) UserByName(ctx context.Context, name string) (*UserRecord, error) {
	return tx.userWhere(ctx, `name = ?`, name)
}

// UserBySubject finds an OIDC user by "issuer|sub"; ENOTFOUND if none.
func (tx *Tx) UserBySubject(ctx context.Context, subject string) (*UserRecord, error) {
	return tx.userWhere(ctx, `subject = ?`, subject)
}

func (tx *Tx) userWhere(ctx context.Context, where string, arg any) (*UserRecord, error) {
	row := tx.q.QueryRowContext(ctx, `SELECT `+userColumns+`, password_hash, COALESCE(subject, '') FROM users WHERE `+where, arg)
	var u UserRecord
	if err := scanUser(row, &u.User, &u.PasswordHash, &u.Subject); err != nil {
		return nil, translate(err, "user")
	}
	return &u, nil
}

// Users lists every user by name.
func (tx *Tx) Users(ctx context.Context) ([]*gatehouse.User, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, translate(err, "users")
	}
	defer rows.Close()
	var out []*gatehouse.User
	for rows.Next() {
		var u gatehouse.User
		if err := scanUser(rows, &u); err != nil {
			return nil, translate(err, "users")
		}
		out = append(out, &u)
	}
	return out, translate(rows.Err(), "users")
}

// UpdateUser writes a user's role, password hash and disabled flag. A
// disabled user's sessions end at once.
func (tx *Tx) UpdateUser(ctx context.Context, u *UserRecord) error {
	disable := 0
	if u.Disabled {
		disable = 1
	}
	// "? = 1" rather than "? IS NULL": PostgreSQL must be able to tell
	// each parameter's type from the statement alone.
	_, err := tx.q.ExecContext(ctx, `UPDATE users SET role = ?, password_hash = ?,
		disabled_at = CASE WHEN ? = 1 THEN COALESCE(disabled_at, ?) ELSE NULL END WHERE id = ?`,
		u.Role, u.PasswordHash, disable, micros(tx.now), u.ID)
	if err != nil || !u.Disabled {
		return translate(err, "user")
	}
	return tx.DeleteUserSessions(ctx, u.ID)
}

// DeleteUserSessions logs a user out everywhere.
func (tx *Tx) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := tx.q.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return translate(err, "sessions")
}

// DeleteUser removes a user; their sessions go with them.
func (tx *Tx) DeleteUser(ctx context.Context, id string) error {
	_, err := tx.q.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	return translate(err, "user")
}

// TouchUserLogin records a successful login now.
func (tx *Tx) TouchUserLogin(ctx context.Context, id string) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE users SET last_login = ? WHERE id = ?`, micros(tx.now), id)
	return translate(err, "user")
}

// LiveAdmins counts enabled admin users and live admin tokens, so the last
// way in as admin is not removed by mistake.
func (tx *Tx) LiveAdmins(ctx context.Context) (int, error) {
	var n int
	err := tx.q.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL) +
		(SELECT count(*) FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?))`,
		micros(tx.now)).Scan(&n)
	return n, translate(err, "users")
}

func scanUser(row rowScanner, u *gatehouse.User, extra ...any) error {
	var created int64
	var login, disabled sql.NullInt64
	dest := append([]any{&u.ID, &u.Name, &u.Role, &u.Source, &created, &login, &disabled}, extra...)
	if err := row.Scan(dest...); err != nil {
		return err
	}
	u.CreatedAt, u.LastLogin, u.Disabled = fromMicros(created), fromNullMicros(login), disabled.Valid
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
