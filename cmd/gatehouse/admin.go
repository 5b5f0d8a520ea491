package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/client"
	"gatehouse/provision"
	"gatehouse/store"
)

// admin is what the tokens and users commands need: the REST API of a
// running server, or, with --db, the database itself (to make the first
// admin before any server runs, or to let one back in).
type admin interface {
	Tokens(ctx context.Context) ([]*gatehouse.Token, error)
	CreateToken(ctx context.Context, spec client.TokenSpec) (*client.CreatedToken, error)
	RevokeToken(ctx context.Context, id string) (*gatehouse.Token, error)
	Users(ctx context.Context) ([]*gatehouse.User, error)
	CreateUser(ctx context.Context, spec client.UserSpec) (*gatehouse.User, error)
	UpdateUser(ctx context.Context, name string, ch client.UserChange) (*gatehouse.User, error)
	DeleteUser(ctx context.Context, name string) error
}

// localAdmin works on the database file, recorded as done by "local:CMD".
type localAdmin struct{ db *store.DB }

func (l localAdmin) Tokens(ctx context.Context) ([]*gatehouse.Token, error) {
	return provision.Tokens(ctx, l.db)
}

func (l localAdmin) CreateToken(ctx context.Context, spec client.TokenSpec) (*client.CreatedToken, error) {
	ps := provision.TokenSpec{Name: spec.Name, Role: spec.Role, Expires: spec.ExpiresAt}
	if spec.ExpiresAt == nil && !spec.NeverExpires {
		at := time.Now().Add(provision.DefaultTokenLife)
		ps.Expires = &at
	}
	secret, t, err := provision.CreateToken(ctx, l.db, ps)
	if err != nil {
		return nil, err
	}
	return &client.CreatedToken{Token: t, Secret: secret}, nil
}

func (l localAdmin) RevokeToken(ctx context.Context, id string) (*gatehouse.Token, error) {
	return provision.RevokeToken(ctx, l.db, id)
}

func (l localAdmin) Users(ctx context.Context) ([]*gatehouse.User, error) {
	return provision.Users(ctx, l.db)
}

func (l localAdmin) CreateUser(ctx context.Context, spec client.UserSpec) (*gatehouse.User, error) {
	return provision.CreateUser(ctx, l.db, provision.UserSpec{Name: spec.Name, Role: spec.Role, Password: spec.Password})
}

func (l localAdmin) UpdateUser(ctx context.Context, name string, ch client.UserChange) (*gatehouse.User, error) {
	return provision.UpdateUser(ctx, l.db, name, provision.UserChange{Role: ch.Role, Password: ch.Password, Disabled: ch.Disabled})
}

func (l localAdmin) DeleteUser(ctx context.Context, name string) error {
	return provision.DeleteUser(ctx, l.db, name)
}

// adminCmd is a tokens or users subcommand: the API flags of every
// operator command, plus --db.
type adminCmd struct {
	*deviceCmd
	db string
}

func newAdminCmd(group, synopsis, arg string, dio deviceIO) *adminCmd {
	cmd := &adminCmd{deviceCmd: newAPICmd(group, synopsis, arg, dio)}
	cmd.fs.StringVar(&cmd.db, "db", "", "work on this SQLite database directly instead of a server (GATEHOUSE_DB is not read here, so the server stays the default)")
	return cmd
}

// open returns the API or the database to work on, and a closer.
func (cmd *adminCmd) open(ctx context.Context, what string) (context.Context, admin, func(), error) {
	if cmd.db == "" {
		c, err := cmd.client()
		return ctx, c, func() {}, err
	}
	db, err := store.Open(ctx, cmd.db)
	if err != nil {
		return ctx, nil, nil, err
	}
	ctx = gatehouse.WithOrigin(ctx, gatehouse.Origin{Actor: "local:" + what})
	return ctx, localAdmin{db}, func() { db.Close() }, nil
}

// roleFlag is a --role flag that refuses anything but the three roles.
type roleFlag struct{ role *gatehouse.Role }

func (f roleFlag) String() string {
	if f.role == nil {
		return ""
	}
	return string(*f.role)
}

func (f roleFlag) Set(v string) error {
	r := gatehouse.Role(v)
	if !r.Valid() {
		return fmt.Errorf("want admin, operator or viewer, not %q", v)
	}
	*f.role = r
	return nil
}

var _ flag.Value = roleFlag{}

// parseExpiry reads "90d", "12h", "2027-06-30", an RFC 3339 time, or
// "never" (nil, true).
func parseExpiry(s string, now time.Time) (*time.Time, bool, error) {
	s = strings.TrimSpace(s)
	if s == "never" {
		return nil, true, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return nil, false, fmt.Errorf("--expires %q: want 1d to 3650d", s)
		}
		at := now.Add(time.Duration(n) * 24 * time.Hour)
		return &at, false, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		at := now.Add(d)
		return &at, false, nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t, false, nil
		}
	}
	return nil, false, fmt.Errorf("--expires %q: want a life like 90d or 12h, a date like 2027-06-30, or never", s)
}
