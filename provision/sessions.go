package provision

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// SessionTTL is how long a browser session lasts before its operator logs
// in again.
const SessionTTL = 12 * time.Hour

// Session is a logged-in browser: whom it stands for and the CSRF token its
// page must echo.
type Session struct {
	Principal gatehouse.Principal
	CSRF      string
}

// errBadLogin is the one answer to a wrong user name or password, so the
// answer does not tell which user names exist.
var errBadLogin = gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "wrong user name or password")

// LoginToken turns an API token into a browser session. The cookie secret
// it returns is stored only as a hash; so is the token behind it.
func (s *Service) LoginToken(ctx context.Context, tokenSecret string) (string, *Session, error) {
	p, err := s.Authenticate(ctx, tokenSecret)
	if err != nil {
		return "", nil, err
	}
	return s.startSession(ctx, *p, "token")
}

// LoginPassword checks a local user's password and starts a session.
func (s *Service) LoginPassword(ctx context.Context, name, password string) (string, *Session, error) {
	if len(password) > maxPassword || len(name) > 100 {
		return "", nil, errBadLogin
	}
	var u *store.UserRecord
	err := s.db.InTx(ctx, func(tx *store.Tx) (err error) {
		u, err = tx.UserByName(ctx, name)
		return err
	})
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return "", nil, err
	}
	phc := ""
	if u != nil && u.Source == gatehouse.SourceLocal && !u.Disabled {
		phc = u.PasswordHash
	}
	ok, err := verifyPassword(ctx, phc, password)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, errBadLogin
	}
	return s.loginUser(ctx, &u.User, "password")
}

func (s *Service) loginUser(ctx context.Context, u *gatehouse.User, how string) (string, *Session, error) {
	if err := s.db.InTx(ctx, func(tx *store.Tx) error { return tx.TouchUserLogin(ctx, u.ID) }); err != nil {
		return "", nil, err
	}
	return s.startSession(ctx, gatehouse.Principal{Kind: gatehouse.PrincipalUser, ID: u.ID, Name: u.Name, Role: u.Role}, how)
}

func (s *Service) startSession(ctx context.Context, p gatehouse.Principal, how string) (string, *Session, error) {
	secret := randomSecret()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateSession(ctx, hashToken(secret), p, tx.Now().Add(SessionTTL)); err != nil {
			return err
		}
		// Who logged in is the principal, whatever the request said before.
		o := gatehouse.OriginOf(ctx)
		o.Actor = p.Actor()
		return s.audit(gatehouse.WithOrigin(ctx, o), tx, ActionLogin, p.Name, nil, map[string]any{"with": how, "role": p.Role})
	})
	if err != nil {
		return "", nil, err
	}
	s.log.InfoContext(ctx, "operator logged in", "actor", p.Actor())
	return secret, &Session{Principal: p, CSRF: csrfFor(secret)}, nil
}

// SessionFor returns the session behind a cookie secret, with the role its
// user or token has now.
func (s *Service) SessionFor(ctx context.Context, secret string) (*Session, error) {
	var out *Session
	err := s.db.View(ctx, func(tx *store.Tx) error {
		ss, err := tx.SessionByHash(ctx, hashToken(secret))
		if err != nil {
			return err
		}
		out = &Session{Principal: ss.Principal, CSRF: csrfFor(secret)}
		return nil
	})
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "session expired or logged out; log in again")
	}
	return out, err
}

// Logout ends the session behind a cookie secret.
func (s *Service) Logout(ctx context.Context, secret string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteSession(ctx, hashToken(secret)) })
}

// csrfFor derives a session's CSRF token from its cookie secret, so the
// database holds neither: only the page that was given the token, or
// whoever holds the cookie, can know it.
func csrfFor(cookieSecret string) string {
	m := hmac.New(sha256.New, []byte(cookieSecret))
	m.Write([]byte("gatehouse session csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
