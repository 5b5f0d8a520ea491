package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/client"
)

const usersHelp = `usage: gatehouse users COMMAND [ARGS] [FLAGS]

Commands:
  list                         every user who logs in to the web page
  create --name NAME [--role admin|operator|viewer] [--password-stdin]
                               make a local user; without --password-stdin a password is
                               generated and printed once (default role admin)
  set NAME [--role R] [--password-stdin] [--disable | --enable]
                               change a user; disabling ends their sessions at once
  delete NAME                  remove a user

These talk to a server as an admin (--server/GATEHOUSE_SERVER, --token/GATEHOUSE_TOKEN), or,
with --db PATH, work on the SQLite database directly: the way to make the first admin before
any server runs, or to give a locked-out admin a new password.
Users who sign in with single sign-on are made at their first login and take their role
from their groups.
`

var usersGroup = &group{name: "users", help: usersHelp, cmds: []namedSub{
	{"list", usersList},
	{"create", usersCreate},
	{"set", usersSet},
	{"delete", usersDelete},
}}

func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return dispatch(ctx, usersGroup, args, deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
}

func usersList(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAdminCmd("users", "list", "", dio)
	if _, err := cmd.parse(args, 0); err != nil {
		return cmd.exit(err)
	}
	ctx, a, done, err := cmd.open(ctx, "users list")
	if err != nil {
		return cmd.exit(err)
	}
	defer done()
	us, err := a.Users(ctx)
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(map[string]any{"users": us}, func(w io.Writer) { writeUsers(w, us, time.Now()) }))
}

func writeUsers(w io.Writer, us []*gatehouse.User, now time.Time) {
	if len(us) == 0 {
		fmt.Fprintln(w, "No users.")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tROLE\tSOURCE\tSTATUS\tLAST LOGIN\tCREATED")
	for _, u := range us {
		status := "enabled"
		if u.Disabled {
			status = "disabled"
		}
		row(tw, u.Name, string(u.Role), string(u.Source), status, agoPtr(u.LastLogin, now), stamp(u.CreatedAt, now))
	}
	tw.Flush()
}

func usersCreate(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAdminCmd("users", "create --name NAME", "", dio)
	name := cmd.fs.String("name", "", "the user name they log in with (required)")
	role := gatehouse.RoleAdmin
	cmd.fs.Var(roleFlag{&role}, "role", "admin, operator or viewer (default admin)")
	fromStdin := cmd.fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	_, err := cmd.parse(args, 0)
	if err == nil && *name == "" {
		err = usageErrorf("--name is required")
	}
	if err != nil {
		return cmd.exit(err)
	}
	password, generated := newPassword(), true
	if *fromStdin {
		if password, err = readPassword(stdin); err != nil {
			return cmd.exit(err)
		}
		generated = false
	}
	ctx, a, done, err := cmd.open(ctx, "users create")
	if err != nil {
		return cmd.exit(err)
	}
	defer done()
	u, err := a.CreateUser(ctx, client.UserSpec{Name: *name, Role: role, Password: password})
	if err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(dio.stderr, "Created %s user %q.\n", u.Role, u.Name)
	if generated {
		fmt.Fprintln(dio.stderr, "Their password, shown once (only its hash is stored):")
		fmt.Fprintln(dio.stdout, password)
	}
	return 0
}

func usersSet(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAdminCmd("users", "set NAME", "user name", dio)
	var role gatehouse.Role
	cmd.fs.Var(roleFlag{&role}, "role", "new role: admin, operator or viewer")
	fromStdin := cmd.fs.Bool("password-stdin", false, "read a new password from the first line of standard input")
	disable := cmd.fs.Bool("disable", false, "stop the user logging in, and end their sessions")
	enable := cmd.fs.Bool("enable", false, "let a disabled user log in again")
	pos, err := cmd.parse(args, 1)
	var ch client.UserChange
	if err == nil {
		ch, err = userChange(role, *fromStdin, *disable, *enable, stdin)
	}
	if err != nil {
		return cmd.exit(err)
	}
	ctx, a, done, err := cmd.open(ctx, "users set")
	if err != nil {
		return cmd.exit(err)
	}
	defer done()
	u, err := a.UpdateUser(ctx, pos[0], ch)
	if err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(dio.stderr, "Updated user %q: role %s, %s.\n", u.Name, u.Role, map[bool]string{true: "disabled", false: "enabled"}[u.Disabled])
	return 0
}

func userChange(role gatehouse.Role, fromStdin, disable, enable bool, stdin io.Reader) (client.UserChange, error) {
	var ch client.UserChange
	if disable && enable {
		return ch, usageErrorf("give --disable or --enable, not both")
	}
	if role != "" {
		ch.Role = &role
	}
	if disable || enable {
		ch.Disabled = &disable
	}
	if fromStdin {
		pw, err := readPassword(stdin)
		if err != nil {
			return ch, err
		}
		ch.Password = &pw
	}
	if ch == (client.UserChange{}) {
		return ch, usageErrorf("nothing to change: give --role, --password-stdin, --disable or --enable")
	}
	return ch, nil
}

func usersDelete(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAdminCmd("users", "delete NAME", "user name", dio)
	pos, err := cmd.parse(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	ctx, a, done, err := cmd.open(ctx, "users delete")
	if err != nil {
		return cmd.exit(err)
	}
	defer done()
	if err := a.DeleteUser(ctx, pos[0]); err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(dio.stderr, "Deleted user %q; their sessions have ended.\n", pos[0])
	return 0
}

// readPassword takes the first line of r, so a password never has to be on
// a command line (where ps and shell history would see it).
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageErrorf("--password-stdin: standard input held no password")
	}
	return pw, nil
}

// newPassword makes a password of 26 base32 letters: 128 random bits.
func newPassword() string { return rand.Text() }
