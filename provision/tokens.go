package provision

import (
	"context"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// CreateToken makes an API token and returns its secret, which is shown once
// and stored only as a hash.
func (s *Service) CreateToken(ctx context.Context, name string, role gatehouse.Role) (string, *gatehouse.Token, error) {
	return CreateToken(ctx, s.db, name, role)
}

// CreateToken works on the database directly, so the first admin token can
// be made before any server runs.
func CreateToken(ctx context.Context, db *store.DB, name string, role gatehouse.Role) (string, *gatehouse.Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", nil, gatehouse.Errorf(gatehouse.EINVALID, "token name must be 1-100 characters")
	}
	if role.Allows(gatehouse.RoleViewer) == false {
		return "", nil, gatehouse.Errorf(gatehouse.EINVALID, "role must be viewer, operator or admin, not %q", role)
	}
	secret := newTokenSecret()
	t := &gatehouse.Token{ID: newID(), Name: name, Role: role}
	err := db.InTx(ctx, func(tx *store.Tx) error { return tx.CreateToken(ctx, t, hashToken(secret)) })
	if err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// Authenticate returns the token a secret belongs to.
func (s *Service) Authenticate(ctx context.Context, secret string) (*gatehouse.Token, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid API token")
	}
	var t *gatehouse.Token
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if t, err = tx.TokenByHash(ctx, hashToken(secret)); err != nil {
			return err
		}
		// Record use at most once a minute: a write per request would
		// serialise every API call on SQLite's single writer.
		if t.LastUsed == nil || tx.Now().Sub(*t.LastUsed) > time.Minute {
			return tx.TouchToken(ctx, t.ID)
		}
		return nil
	})
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid API token")
	}
	return t, err
}
