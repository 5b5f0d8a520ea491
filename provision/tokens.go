package provision

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// DefaultTokenLife is how long a token lives unless its maker says
// otherwise: long enough for a quarter's automation, short enough that a
// forgotten one dies.
const DefaultTokenLife = 90 * 24 * time.Hour

// TokenSpec describes a token to make.
type TokenSpec struct {
	Name string
	Role gatehouse.Role
	// Expires is when it stops working; nil means never, which must be asked
	// for (see DefaultTokenLife).
	Expires *time.Time
}

// CreateToken makes an API token and returns its secret, which is shown once
// and stored only as a hash.
func (s *Service) CreateToken(ctx context.Context, spec TokenSpec) (string, *gatehouse.Token, error) {
	return CreateToken(ctx, s.db, spec)
}

// CreateToken works on the database directly, so the first admin token can
// be made before any server runs.
func CreateToken(ctx context.Context, db *store.DB, spec TokenSpec) (string, *gatehouse.Token, error) {
	secret, t, err := createToken(ctx, db, spec)
	return secret, t, refusedIn(ctx, db, slog.Default(), ActionTokenCreate, spec.Name, tokenDetail(spec.Role, spec.Expires), err)
}

func createToken(ctx context.Context, db *store.DB, spec TokenSpec) (string, *gatehouse.Token, error) {
	t, err := checkTokenSpec(spec, time.Now())
	if err != nil {
		return "", nil, err
	}
	t.CreatedBy = gatehouse.OriginOf(ctx).Actor
	secret := newTokenSecret()
	err = db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateToken(ctx, t, hashToken(secret)); err != nil {
			return err
		}
		return recordIn(ctx, tx, ActionTokenCreate, t.Name, nil, tokenDetail(t.Role, t.ExpiresAt))
	})
	if errors.Is(err, store.ErrUnique) {
		return "", nil, gatehouse.Errorf(gatehouse.ECONFLICT, "a live token named %q exists already; revoke it or pick another name", t.Name)
	}
	if err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

func tokenDetail(role gatehouse.Role, expires *time.Time) map[string]any {
	d := map[string]any{"role": role, "expires_at": "never"}
	if expires != nil {
		d["expires_at"] = expires.UTC().Format(time.RFC3339)
	}
	return d
}

func checkTokenSpec(spec TokenSpec, now time.Time) (*gatehouse.Token, error) {
	name := strings.TrimSpace(spec.Name)
	if err := checkPrincipalName("token", name); err != nil {
		return nil, err
	}
	if !spec.Role.Valid() {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "role must be viewer, operator or admin, not %q", spec.Role)
	}
	if spec.Expires != nil && !spec.Expires.After(now) {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "expiry %s is in the past", spec.Expires.UTC().Format(time.RFC3339))
	}
	return &gatehouse.Token{ID: newID(), Name: name, Role: spec.Role, ExpiresAt: spec.Expires}, nil
}

// Tokens lists every token, revoked and expired ones included; never a
// secret, which is not kept.
func (s *Service) Tokens(ctx context.Context) ([]*gatehouse.Token, error) { return Tokens(ctx, s.db) }

// Tokens works on the database directly, for the CLI's --db.
func Tokens(ctx context.Context, db *store.DB) ([]*gatehouse.Token, error) {
	var out []*gatehouse.Token
	err := db.InTx(ctx, func(tx *store.Tx) (err error) {
		out, err = tx.Tokens(ctx)
		return err
	})
	return out, err
}

// RevokeToken makes a token stop working at once, with its browser
// sessions; the row stays, so the audit trail's names keep their meaning.
func (s *Service) RevokeToken(ctx context.Context, id string) (*gatehouse.Token, error) {
	return RevokeToken(ctx, s.db, id)
}

// RevokeToken works on the database directly, for when no admin can reach
// the server.
func RevokeToken(ctx context.Context, db *store.DB, id string) (*gatehouse.Token, error) {
	var t *gatehouse.Token
	err := db.InTx(ctx, func(tx *store.Tx) (err error) {
		if err = tx.RevokeToken(ctx, id); err != nil {
			return err
		}
		if t, err = tx.TokenByID(ctx, id); err != nil {
			return err
		}
		if err := keepAnAdmin(ctx, tx); err != nil {
			return err
		}
		return recordIn(ctx, tx, ActionTokenRevoke, t.Name, nil, map[string]any{"id": t.ID, "role": t.Role})
	})
	return t, refusedIn(ctx, db, slog.Default(), ActionTokenRevoke, id, map[string]any{"id": id}, err)
}

// Authenticate returns the principal an API token secret stands for.
func (s *Service) Authenticate(ctx context.Context, secret string) (*gatehouse.Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid API token")
	}
	var t *gatehouse.Token
	var touch bool
	err := s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		if t, err = tx.TokenByHash(ctx, hashToken(secret)); err != nil {
			return err
		}
		// Record use at most once a minute: a write per request would
		// serialise every API call on SQLite's single writer.
		touch = t.LastUsed == nil || tx.Now().Sub(*t.LastUsed) > time.Minute
		return tokenUsable(t, tx.Now())
	})
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "invalid API token")
	}
	if err != nil {
		return nil, err
	}
	// The token is good whether or not its use can be written down: a
	// database that cannot be written still serves reads, to tokens too.
	if touch {
		err := s.db.InTx(ctx, func(tx *store.Tx) error { return tx.TouchToken(ctx, t.ID) })
		if err != nil && !errors.Is(err, store.ErrUnwritable) {
			return nil, err
		}
	}
	return &gatehouse.Principal{Kind: gatehouse.PrincipalToken, ID: t.ID, Name: t.Name, Role: t.Role}, nil
}

// tokenUsable refuses revoked and expired tokens, saying which: only the
// holder of the secret gets this far, and they need to know what to fix.
func tokenUsable(t *gatehouse.Token, now time.Time) error {
	if t.RevokedAt != nil {
		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "API token %q was revoked", t.Name)
	}
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "API token %q expired at %s", t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}
