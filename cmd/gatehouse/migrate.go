package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"gatehouse/store"
)

const migrateHelp = `usage: gatehouse migrate [--db DSN]

Brings the database's schema up to date and exits: gatehouse's own migrations, then the job
queue's. Run it before starting a new version on a shared PostgreSQL database (the Helm chart's
init container does), so replicas of the old version keep serving while it runs; two runs at once
take turns. 'gatehouse serve' migrates at start too unless --migrate=false. A database written by a
newer gatehouse is refused, never changed.

Flags:
  --db DSN   a SQLite file path or a postgres:// URL (env GATEHOUSE_DB, default gatehouse.db)
`

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, migrateHelp) }
	dsn := fs.String("db", envOr(getenv, "GATEHOUSE_DB", "gatehouse.db"), "the database")
	switch err := parseFlags(fs, args); {
	case errors.Is(err, flag.ErrHelp):
		return 0 // the usage went to the flag set's output
	case err != nil:
		return 2
	case fs.NArg() != 0:
		fmt.Fprint(stderr, migrateHelp)
		return 2
	}
	db, err := store.Connect(ctx, *dsn)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	defer db.Close()
	before, err := db.SchemaVersionIfAny(ctx)
	if err == nil {
		err = db.Migrate(ctx)
	}
	var after int
	if err == nil {
		after, err = db.SchemaVersion(ctx)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	if before == after {
		fmt.Fprintf(stdout, "%s: schema already at version %d\n", store.Describe(*dsn), after)
	} else {
		fmt.Fprintf(stdout, "%s: schema migrated from version %d to %d\n", store.Describe(*dsn), before, after)
	}
	return 0
}
