package provision

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"gatehouse"
	"gatehouse/store"
)

// ExternalIdentity is a person an identity provider vouched for, with the
// role their groups map to.
type ExternalIdentity struct {
	Issuer, Subject string
	// Name is how they are shown: the provider's user name or e-mail.
	Name string
	Role gatehouse.Role
}

// LoginExternal starts a session for a person an identity provider signed
// in. They are found by issuer and subject, never by name (a provider may
// hand a name to someone else later); the first login makes their user and
// every login sets the role their groups give now.
func (s *Service) LoginExternal(ctx context.Context, id ExternalIdentity) (string, *Session, error) {
	if id.Issuer == "" || id.Subject == "" {
		return "", nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "identity provider gave no subject")
	}
	if !id.Role.Valid() {
		return "", nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "none of your groups is given a role in gatehouse; ask an admin")
	}
	var u *gatehouse.User
	err := s.db.InTx(ctx, func(tx *store.Tx) (err error) {
		u, err = upsertExternal(ctx, tx, id)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	if u.Disabled {
		return "", nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "user %q is disabled in gatehouse; ask an admin", u.Name)
	}
	return s.loginUser(ctx, u, "sso")
}

func upsertExternal(ctx context.Context, tx *store.Tx, id ExternalIdentity) (*gatehouse.User, error) {
	subject := id.Issuer + "|" + id.Subject
	u, err := tx.UserBySubject(ctx, subject)
	if err == nil {
		u.Role = id.Role
		return &u.User, tx.UpdateUser(ctx, u)
	}
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return nil, err
	}
	u = &store.UserRecord{User: gatehouse.User{ID: newID(), Name: externalName(id), Role: id.Role, Source: gatehouse.SourceOIDC}, Subject: subject}
	// Asked first rather than learnt from a failed insert: on PostgreSQL a
	// failed statement ends the transaction.
	_, err = tx.UserByName(ctx, u.Name)
	switch {
	case err == nil:
		// The name belongs to another user already (a local one, or someone
		// else at the provider): keep both, told apart by a suffix from the
		// subject rather than merged.
		u.Name = u.Name + "#" + shortHash(subject)
	case gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND:
		return nil, err
	}
	return &u.User, tx.CreateUser(ctx, u)
}

func externalName(id ExternalIdentity) string {
	name := strings.TrimSpace(id.Name)
	if checkPrincipalName("user", name) != nil {
		name = "sso-" + shortHash(id.Issuer+"|"+id.Subject)
	}
	return name
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// ssoKeyName names the server secret single sign-on seals its flow cookies
// with.
const ssoKeyName = "sso_flow"

// SSOFlowKey is a 32-byte key for sealing the browser's single sign-on flow
// state. It is made on first use and kept in the database, so every server
// on the database shares it and a sign-in started before a restart can
// still finish after it.
func (s *Service) SSOFlowKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("provision: generate sso key: %w", err)
	}
	key, err := s.db.ServerSecret(ctx, ssoKeyName, fresh)
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	if len(key) != len(fresh) {
		return nil, fmt.Errorf("provision: stored sso key has %d bytes, want %d", len(key), len(fresh))
	}
	return key, nil
}
