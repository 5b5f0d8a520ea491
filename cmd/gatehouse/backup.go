package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"gatehouse/store"
)

const backupHelp = `usage: gatehouse backup FILE [--db PATH]

Writes a consistent copy of the SQLite database to FILE while the server keeps running (SQLite's
VACUUM INTO reads one snapshot). FILE must not exist yet; the copy is checked before it gets its
name. To restore, stop the server and put the copy in place of the database file (remove the old
file's -wal and -shm files too), then start the server. See README "Backup and restore".

Flags:
  --db PATH   the database (env GATEHOUSE_DB, default gatehouse.db)
`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backupHelp) }
	dbPath := fs.String("db", envOr(getenv, "GATEHOUSE_DB", "gatehouse.db"), "the database")
	pos, err := parseInterleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	case len(pos) != 1:
		fmt.Fprint(stderr, backupHelp)
		return 2
	}
	out := pos[0]
	if store.IsPostgres(*dbPath) {
		fmt.Fprintln(stderr, "gatehouse: backup copies a SQLite database; back up PostgreSQL with pg_dump (see docs/deploy.md)")
		return 2
	}
	if _, err := os.Stat(*dbPath); err != nil {
		fmt.Fprintf(stderr, "gatehouse: no database at %s (set --db): %v\n", *dbPath, err)
		return 1
	}
	db, err := store.Open(ctx, *dbPath)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse: %v\n", err)
		return 1
	}
	defer db.Close()
	if err := db.Backup(ctx, out); err != nil {
		fmt.Fprintf(stderr, "gatehouse: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", *dbPath, out)
	return 0
}
