package provision

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"unicode"

	"gatehouse"
	"gatehouse/store"
)

// UserSpec describes a local user to make.
type UserSpec struct {
	Name     string
	Role     gatehouse.Role
	Password string
}

// UserChange is what an admin changes about a user; nil fields stay.
type UserChange struct {
	Role     *gatehouse.Role
	Password *string
	Disabled *bool
}

// CreateUser makes a local user with a password.
func (s *Service) CreateUser(ctx context.Context, spec UserSpec) (*gatehouse.User, error) {
	return CreateUser(ctx, s.db, spec)
}

// CreateUser works on the database directly, so the first admin can be
// made before any server runs.
func CreateUser(ctx context.Context, db *store.DB, spec UserSpec) (*gatehouse.User, error) {
	u, err := createUser(ctx, db, spec)
	return u, refusedIn(ctx, db, slog.Default(), ActionUserCreate, spec.Name, map[string]any{"role": spec.Role}, err)
}

func createUser(ctx context.Context, db *store.DB, spec UserSpec) (*gatehouse.User, error) {
	name := strings.TrimSpace(spec.Name)
	if err := checkPrincipalName("user", name); err != nil {
		return nil, err
	}
	if !spec.Role.Valid() {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "role must be viewer, operator or admin, not %q", spec.Role)
	}
	if err := checkPassword(spec.Password); err != nil {
		return nil, err
	}
	hash, err := hashPassword(ctx, spec.Password)
	if err != nil {
		return nil, err
	}
	u := &store.UserRecord{User: gatehouse.User{ID: newID(), Name: name, Role: spec.Role, Source: gatehouse.SourceLocal}, PasswordHash: hash}
	err = db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return recordIn(ctx, tx, ActionUserCreate, u.Name, nil, map[string]any{"role": u.Role, "source": u.Source})
	})
	if errors.Is(err, store.ErrUnique) {
		return nil, gatehouse.Errorf(gatehouse.ECONFLICT, "a user named %q exists already", name)
	}
	if err != nil {
		return nil, err
	}
	return &u.User, nil
}

// Users lists every user; never a password hash.
func (s *Service) Users(ctx context.Context) ([]*gatehouse.User, error) { return Users(ctx, s.db) }

// Users works on the database directly, for the CLI's --db.
func Users(ctx context.Context, db *store.DB) ([]*gatehouse.User, error) {
	var out []*gatehouse.User
	err := db.InTx(ctx, func(tx *store.Tx) (err error) {
		out, err = tx.Users(ctx)
		return err
	})
	return out, err
}

// UpdateUser changes a user's role, password or disabled flag; a new
// password or disabling ends the user's sessions. It refuses
// to leave no enabled admin user or live admin token, and a password for a
// user whose identity provider keeps it.
func (s *Service) UpdateUser(ctx context.Context, name string, c UserChange) (*gatehouse.User, error) {
	return UpdateUser(ctx, s.db, name, c)
}

// UpdateUser works on the database directly, so an admin locked out can be
// given a new password by whoever runs the server.
func UpdateUser(ctx context.Context, db *store.DB, name string, c UserChange) (*gatehouse.User, error) {
	u, err := updateUser(ctx, db, name, c)
	return u, refusedIn(ctx, db, slog.Default(), ActionUserUpdate, name, changeDetail(c), err)
}

// changeDetail says what a change touched; never the password itself.
func changeDetail(c UserChange) map[string]any {
	d := map[string]any{}
	if c.Role != nil {
		d["role"] = *c.Role
	}
	if c.Password != nil {
		d["sign_in"] = "new password set"
	}
	if c.Disabled != nil {
		d["disabled"] = *c.Disabled
	}
	return d
}

func updateUser(ctx context.Context, db *store.DB, name string, c UserChange) (*gatehouse.User, error) {
	if c.Password != nil {
		if err := checkPassword(*c.Password); err != nil {
			return nil, err
		}
	}
	hash := ""
	if c.Password != nil {
		var err error
		if hash, err = hashPassword(ctx, *c.Password); err != nil {
			return nil, err
		}
	}
	var out *gatehouse.User
	err := db.InTx(ctx, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, name)
		if err != nil {
			return err
		}
		if err := applyChange(u, c, hash); err != nil {
			return err
		}
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		// A new password is often set because the old one leaked: whoever
		// logged in with it is logged out.
		if c.Password != nil {
			if err := tx.DeleteUserSessions(ctx, u.ID); err != nil {
				return err
			}
		}
		out = &u.User
		if err := keepAnAdmin(ctx, tx); err != nil {
			return err
		}
		return recordIn(ctx, tx, ActionUserUpdate, u.Name, nil, changeDetail(c))
	})
	return out, err
}

func applyChange(u *store.UserRecord, c UserChange, hash string) error {
	if c.Role != nil {
		if !c.Role.Valid() {
			return gatehouse.Errorf(gatehouse.EINVALID, "role must be viewer, operator or admin, not %q", *c.Role)
		}
		if u.Source != gatehouse.SourceLocal {
			return gatehouse.Errorf(gatehouse.EINVALID, "user %q signs in with single sign-on and takes its role from its groups there", u.Name)
		}
		u.Role = *c.Role
	}
	if c.Password != nil {
		if u.Source != gatehouse.SourceLocal {
			return gatehouse.Errorf(gatehouse.EINVALID, "user %q signs in with single sign-on and has no password here", u.Name)
		}
		u.PasswordHash = hash
	}
	if c.Disabled != nil {
		u.Disabled = *c.Disabled
	}
	return nil
}

// DeleteUser removes a user and ends their sessions.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	return DeleteUser(ctx, s.db, name)
}

// DeleteUser works on the database directly, for the CLI's --db.
func DeleteUser(ctx context.Context, db *store.DB, name string) error {
	err := db.InTx(ctx, func(tx *store.Tx) error {
		u, err := tx.UserByName(ctx, name)
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(ctx, u.ID); err != nil {
			return err
		}
		if err := keepAnAdmin(ctx, tx); err != nil {
			return err
		}
		return recordIn(ctx, tx, ActionUserDelete, u.Name, nil, map[string]any{"role": u.Role, "source": u.Source})
	})
	return refusedIn(ctx, db, slog.Default(), ActionUserDelete, name, nil, err)
}

// keepAnAdmin fails the transaction if it removed the last way in as admin:
// without one, nobody could manage users or tokens but by editing the
// database.
func keepAnAdmin(ctx context.Context, tx *store.Tx) error {
	n, err := tx.LiveAdmins(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "that would leave no enabled admin user or live admin token")
	}
	return nil
}

// checkPrincipalName keeps user and token names printable and short: they
// appear in logs, the audit trail and the page.
func checkPrincipalName(what, name string) error {
	if name == "" || len(name) > 100 {
		return gatehouse.Errorf(gatehouse.EINVALID, "%s name must be 1-100 characters", what)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return gatehouse.Errorf(gatehouse.EINVALID, "%s name must be printable characters", what)
		}
	}
	return nil
}
