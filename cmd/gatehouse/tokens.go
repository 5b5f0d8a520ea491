package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/store"
)

func runTokens(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: gatehouse tokens create --db PATH --name NAME [--role admin|operator|viewer]")
		return 2
	}
	fs := flag.NewFlagSet("tokens create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr(getenv, "GATEHOUSE_DB", "gatehouse.db"), "database: SQLite file path (env GATEHOUSE_DB)")
	name := fs.String("name", "", "what the token is for, e.g. 'alice' or 'ci' (required)")
	role := fs.String("role", string(gatehouse.RoleAdmin), "admin, operator or viewer")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *name == "" {
		fmt.Fprintln(stderr, "gatehouse: --name is required")
		return 2
	}
	secret, err := createToken(ctx, *db, *name, gatehouse.Role(*role))
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	fmt.Fprintf(stderr, "Created %s token %q. It is shown once; only its hash is stored.\n", *role, *name)
	fmt.Fprintln(stdout, secret)
	return 0
}

func createToken(ctx context.Context, dsn, name string, role gatehouse.Role) (string, error) {
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	secret, _, err := provision.CreateToken(ctx, db, name, role)
	if err != nil && gatehouse.ErrorCode(err) != gatehouse.EINTERNAL {
		return "", errors.New(gatehouse.ErrorMessage(err))
	}
	return secret, err
}
