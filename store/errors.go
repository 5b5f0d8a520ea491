package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"gatehouse"
)

// ErrUnique reports a unique constraint violation; callers turn it into a
// conflict that names what was taken.
var ErrUnique = errors.New("store: unique constraint violated")

// pgUniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// translate maps driver errors onto store and application errors. Unknown
// errors pass through wrapped, never swallowed.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "%s not found", what)
	}
	if u := asUnwritable(err); errors.Is(u, ErrUnwritable) {
		return u
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %s", ErrUnique, constraintColumn(se.Error()))
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == pgUniqueViolation {
		return fmt.Errorf("%w: %s", ErrUnique, pe.ConstraintName)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// constraintColumn pulls "devices.name" out of SQLite's
// "UNIQUE constraint failed: devices.name" so callers can tell which. The
// driver prefixes the message with its own "constraint failed: " and appends
// " (2067)", the result code, so the columns lie between the last prefix and
// the last " ("; a composite key gives "t.a, t.b".
func constraintColumn(msg string) string {
	const prefix = "constraint failed: "
	i := strings.LastIndex(msg, prefix)
	if i < 0 {
		return ""
	}
	cols := msg[i+len(prefix):]
	if j := strings.LastIndex(cols, " ("); j >= 0 {
		cols = cols[:j]
	}
	return cols
}
