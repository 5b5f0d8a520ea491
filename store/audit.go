package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"unicode/utf8"

	"gatehouse/audit"
)

// AppendAudit adds e at the end of the audit log, in the transaction of the
// change it records. It sets e's Seq, At, PrevHash and Hash.
//
// The previous hash is read in this same transaction. That is safe on
// SQLite because writers are serialised: transactions begin IMMEDIATE
// (_txlock=immediate), so no other writer can append between the read and
// the insert. A PostgreSQL store must take a lock first (for example
// pg_advisory_xact_lock, or SELECT ... FOR UPDATE on a one-row head table);
// without one, two concurrent appends would chain to the same entry and
// one would fail on the primary key.
func (tx *Tx) AppendAudit(ctx context.Context, e *audit.Entry) error {
	if err := checkAuditText(e); err != nil {
		return err
	}
	head := audit.Head{}
	err := tx.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&head.Seq, &head.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return translate(err, "audit log head")
	}
	e.Seq, e.At, e.PrevHash = head.Seq+1, tx.now, head.Hash
	if head.Seq == 0 {
		e.PrevHash = audit.GenesisHash
	}
	if e.Detail == "" {
		e.Detail = "{}"
	}
	e.Hash = audit.ComputeHash(*e)
	_, err = tx.q.ExecContext(ctx, `INSERT INTO audit_log
		(seq, at, actor, source, request_id, action, target, result, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, micros(e.At), e.Actor, e.Source, e.RequestID, e.Action, e.Target, e.Result, e.Detail, e.PrevHash, e.Hash)
	return translate(err, "audit entry")
}

// checkAuditText refuses text that would not survive an export: JSON
// replaces invalid UTF-8, so the exported entry would no longer match its
// hash.
func checkAuditText(e *audit.Entry) error {
	for _, s := range []string{e.Actor, e.Source, e.RequestID, e.Action, e.Target, e.Result, e.Detail} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("store: audit entry %s: text is not valid UTF-8", e.Action)
		}
	}
	return nil
}

const auditColumns = `seq, at, actor, source, request_id, action, target, result, detail, prev_hash, hash`

// AuditBefore returns up to limit entries, newest first, with seq below
// before; before <= 0 starts at the newest.
func (tx *Tx) AuditBefore(ctx context.Context, before int64, limit int) ([]audit.Entry, error) {
	if before <= 0 {
		return tx.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq DESC LIMIT ?`, limit)
	}
	return tx.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?`, before, limit)
}

// AuditAfter returns up to limit entries, oldest first, with seq above after.
func (tx *Tx) AuditAfter(ctx context.Context, after int64, limit int) ([]audit.Entry, error) {
	return tx.auditQuery(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
}

func (tx *Tx) auditQuery(ctx context.Context, q string, args ...any) ([]audit.Entry, error) {
	rows, err := tx.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "audit log")
	}
	defer rows.Close()
	out := []audit.Entry{}
	for rows.Next() {
		var e audit.Entry
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Source, &e.RequestID, &e.Action, &e.Target, &e.Result,
			&e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, translate(err, "audit log")
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, translate(rows.Err(), "audit log")
}

// auditPage is how many entries AuditEntries reads per transaction.
const auditPage = 1000

// AuditEntries yields every entry, oldest first, for export and
// verification. It reads a page per short transaction rather than holding
// one open for the whole log: the pool has one connection, and a long read
// would stall every request behind it. Paging by seq sees a consistent log
// because entries are only ever appended at the end. It stops after the
// first error.
func (d *DB) AuditEntries(ctx context.Context) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		var after int64
		for {
			var page []audit.Entry
			err := d.InTx(ctx, func(tx *Tx) error {
				var err error
				page, err = tx.AuditAfter(ctx, after, auditPage)
				return err
			})
			if err != nil {
				yield(audit.Entry{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < auditPage {
				return
			}
			after = page[len(page)-1].Seq
		}
	}
}
