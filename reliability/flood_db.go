package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // the driver gatehouse's store uses
)

// countRows counts the rows of tables in a SQLite database that a running
// server holds open: read-only, through the write-ahead log, so it sees
// every commit and changes nothing.
func countRows(ctx context.Context, path string, tables ...string) (map[string]int, error) {
	db, err := sql.Open("sqlite", "file:"+strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := map[string]int{}
	for _, t := range tables {
		var n int
		// Table names come from this package's own constants, never input.
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM "`+t+`"`).Scan(&n); err != nil {
			return out, fmt.Errorf("count %s in %s: %w", t, path, err)
		}
		out[t] = n
	}
	return out, nil
}
