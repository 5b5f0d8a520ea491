package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"gatehouse"
	"gatehouse/client"
)

const tokensHelp = `usage: gatehouse tokens COMMAND [ARGS] [FLAGS]

Commands:
  list                         every API token: name, role, expiry, last use (never a secret)
  create --name NAME [--role admin|operator|viewer] [--expires 90d|12h|2027-06-30|never]
                               make a token and print its secret once (default role admin, life 90d)
  revoke NAME|ID               make a live token stop working at once

These talk to a server as an admin (--server/GATEHOUSE_SERVER, --token/GATEHOUSE_TOKEN), or,
with --db PATH, work on the SQLite database directly: the way to make the first admin token
before any server runs.
`

var tokensGroup = &group{name: "tokens", help: tokensHelp, cmds: []namedSub{
	{"list", tokensList},
	{"create", tokensCreate},
	{"revoke", tokensRevoke},
}}

func runTokens(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return dispatch(ctx, tokensGroup, args, deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
}

func tokensList(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAdminCmd("tokens", "list", "", dio)
	if _, err := cmd.parse(args, 0); err != nil {
		return cmd.exit(err)
	}
	ctx, a, done, err := cmd.open(ctx, "tokens list")
	if err != nil {
		return cmd.exit(err)
	}
	defer done()
	ts, err := a.Tokens(ctx)
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(map[string]any{"tokens": ts}, func(w io.Writer) { writeTokens(w, ts, time.Now()) }))
}

func writeTokens(w io.Writer, ts []*gatehouse.Token, now time.Time) {
	if len(ts) == 0 {
		fmt.Fprintln(w, "No tokens.")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATUS\tEXPIRES\tLAST USED\tCREATED BY")
	for _, t := range ts {
		expires := "never"
		if t.ExpiresAt != nil {
			expires = stamp(*t.ExpiresAt, now)
		}
		row(tw, t.ID, t.Name, string(t.Role), tokenStatus(t, now), expires, agoPtr(t.LastUsed, now), dash(t.CreatedBy))
	}
	tw.Flush()
}

func tokenStatus(t *gatehouse.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "expired"
	}
	return "live"
}

func tokensCreate(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAdminCmd("tokens", "create --name NAME", "", dio)
	name := cmd.fs.String("name", "", "what the token is for, e.g. 'alice' or 'ci' (required, unique among live tokens)")
	role := gatehouse.RoleAdmin
	cmd.fs.Var(roleFlag{&role}, "role", "admin, operator or viewer (default admin)")
	expires := cmd.fs.String("expires", "90d", "life (90d, 12h), date (2027-06-30), or never")
	var spec client.TokenSpec
	_, err := cmd.parse(args, 0)
	if err == nil && *name == "" {
		err = usageErrorf("--name is required")
	}
	if err == nil {
		spec = client.TokenSpec{Name: *name, Role: role}
		spec.ExpiresAt, spec.NeverExpires, err = parseExpiry(*expires, time.Now())
		if err != nil {
			err = usageErrorf("%s", err)
		}
	}
	if err != nil {
		return cmd.exit(err)
	}
	ctx, a, done, err := cmd.open(ctx, "tokens create")
	if err != nil {
		return cmd.exit(err)
	}
	defer done()
	ct, err := a.CreateToken(ctx, spec)
	if err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(dio.stderr, "Created %s token %q (%s). It is shown once; only its hash is stored.\n",
		ct.Token.Role, ct.Token.Name, expiryText(ct.Token))
	fmt.Fprintln(dio.stdout, ct.Secret)
	return 0
}

func expiryText(t *gatehouse.Token) string {
	if t.ExpiresAt == nil {
		return "never expires"
	}
	return "expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
}

func tokensRevoke(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAdminCmd("tokens", "revoke NAME|ID", "token name or ID", dio)
	pos, err := cmd.parse(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	ctx, a, done, err := cmd.open(ctx, "tokens revoke")
	if err != nil {
		return cmd.exit(err)
	}
	defer done()
	id, err := liveTokenID(ctx, a, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	t, err := a.RevokeToken(ctx, id)
	if err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(dio.stderr, "Revoked token %q (%s); it and its browser sessions stop working now.\n", t.Name, t.ID)
	return 0
}

// liveTokenID finds the live token named or numbered ref: names are
// unique among live tokens, so either identifies one.
func liveTokenID(ctx context.Context, a admin, ref string) (string, error) {
	ts, err := a.Tokens(ctx)
	if err != nil {
		return "", err
	}
	for _, t := range ts {
		if t.RevokedAt == nil && (t.ID == ref || t.Name == ref) {
			return t.ID, nil
		}
	}
	return "", gatehouse.Errorf(gatehouse.ENOTFOUND, "no live token named or with ID %q ('gatehouse tokens list' shows them)", ref)
}
