package provision

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// SessionTTL is how long a browser session lasts before its operator logs
// in again.
const SessionTTL = 12 * time.Hour

// Session is a logged-in browser: whose token it stands for and the CSRF
// token its page must echo.
type Session struct {
	Token *gatehouse.Token
	CSRF  string
}

// Login turns an API token into a browser session. The cookie secret it
// returns is stored only as a hash; so is the token behind it.
func (s *Service) Login(ctx context.Context, tokenSecret string) (string, *Session, error) {
	t, err := s.Authenticate(ctx, tokenSecret)
	if err != nil {
		return "", nil, err
	}
	secret, csrf := randomSecret(), randomSecret()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		return tx.CreateSession(ctx, hashToken(secret), t.ID, csrf, tx.Now().Add(SessionTTL))
	})
	if err != nil {
		return "", nil, err
	}
	s.log.Info("operator logged in", "token", t.Name)
	return secret, &Session{Token: t, CSRF: csrf}, nil
}

// SessionFor returns the session behind a cookie secret.
func (s *Service) SessionFor(ctx context.Context, secret string) (*Session, error) {
	var out *Session
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		ss, err := tx.SessionByHash(ctx, hashToken(secret))
		if err != nil {
			return err
		}
		out = &Session{Token: &ss.Token, CSRF: ss.CSRF}
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

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
