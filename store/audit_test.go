package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/audit"
	"gatehouse/store"
)

// appendN appends n entries, one transaction each, targets "dev-1"...
func appendN(t *testing.T, db *store.DB, n int) {
	t.Helper()
	for i := range n {
		inTx(t, db, func(tx *store.Tx) error {
			return tx.AppendAudit(t.Context(), &audit.Entry{Actor: "token:alice", Source: "192.0.2.1", RequestID: fmt.Sprint("req-", i),
				Action: "device.approve", Target: fmt.Sprint("dev-", i+1), Result: "ok", Detail: `{"name":"gw"}`})
		})
	}
}

func verifyDB(t *testing.T, db *store.DB, expect audit.Head) (audit.Head, error) {
	t.Helper()
	return audit.Verify(db.AuditEntries(t.Context()), expect)
}

func testAuditAppendChains(t *testing.T, db *store.DB, clk *clock) {
	var first audit.Entry
	inTx(t, db, func(tx *store.Tx) error {
		first = audit.Entry{Actor: "token:alice", Action: "device.approve", Target: "dev-1", Result: "ok"}
		return tx.AppendAudit(t.Context(), &first)
	})
	if first.Seq != 1 || first.PrevHash != audit.GenesisHash || !first.At.Equal(at(0)) || first.Detail != "{}" ||
		first.Hash != audit.ComputeHash(first) {
		t.Fatalf("first entry: %+v", first)
	}
	clk.Set(t0.Add(time.Second))
	appendN(t, db, 2)
	var page []audit.Entry
	inTx(t, db, func(tx *store.Tx) error {
		var err error
		page, err = tx.AuditBefore(t.Context(), 0, 10)
		return err
	})
	if len(page) != 3 || page[0].Seq != 3 || page[2] != first || page[0].PrevHash != page[1].Hash || !page[0].At.Equal(at(time.Second)) {
		t.Fatalf("newest first: %+v", page)
	}
	inTx(t, db, func(tx *store.Tx) error {
		older, err := tx.AuditBefore(t.Context(), 3, 1)
		if err != nil || len(older) != 1 || older[0].Seq != 2 {
			t.Errorf("before 3, limit 1: %+v %v", older, err)
		}
		newer, err := tx.AuditAfter(t.Context(), 1, 10)
		if err != nil || len(newer) != 2 || newer[0].Seq != 2 || newer[1].Seq != 3 {
			t.Errorf("after 1: %+v %v", newer, err)
		}
		return nil
	})
	if head, err := verifyDB(t, db, audit.Head{}); err != nil || head != (audit.Head{Seq: 3, Hash: page[0].Hash}) {
		t.Errorf("Verify = %v, %v", head, err)
	}
}

// testAuditRolledBack: an entry appended in a transaction that fails
// disappears with it, and the chain goes on from the last committed one.
func testAuditRolledBack(t *testing.T, db *store.DB, _ *clock) {
	appendN(t, db, 1)
	boom := errors.New("the change failed")
	err := db.InTx(t.Context(), func(tx *store.Tx) error {
		if err := tx.AppendAudit(t.Context(), &audit.Entry{Actor: "a", Action: "device.approve", Result: "ok"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	appendN(t, db, 1)
	if head, err := verifyDB(t, db, audit.Head{}); err != nil || head.Seq != 2 {
		t.Errorf("after a rollback: %v, %v", head, err)
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	appendN(t, db, 2)
	for _, q := range []string{`UPDATE audit_log SET result = 'ok, honestly' WHERE seq = 1`, `DELETE FROM audit_log WHERE seq = 2`} {
		_, err := db.SQL().ExecContext(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
}

func testAuditRefusesInvalidUTF8(t *testing.T, db *store.DB, _ *clock) {
	err := db.InTx(t.Context(), func(tx *store.Tx) error {
		return tx.AppendAudit(t.Context(), &audit.Entry{Actor: "a", Action: "device.approve", Target: "\xff", Result: "ok"})
	})
	if err == nil {
		t.Fatal("invalid UTF-8 was stored; an export could not reproduce its hash")
	}
}

// testAuditEntriesPages reads a log longer than one page, oldest first.
func testAuditEntriesPages(t *testing.T, db *store.DB, _ *clock) {
	const n = 2345
	inTx(t, db, func(tx *store.Tx) error {
		for i := range n {
			if err := tx.AppendAudit(t.Context(), &audit.Entry{Actor: "a", Action: "device.retry", Target: fmt.Sprint(i), Result: "ok"}); err != nil {
				return err
			}
		}
		return nil
	})
	var seqs []int64
	for e, err := range db.AuditEntries(t.Context()) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) != n || seqs[0] != 1 || seqs[n-1] != n {
		t.Fatalf("%d entries from %v to %v", len(seqs), seqs[0], seqs[len(seqs)-1])
	}
	stopped := 0
	for range db.AuditEntries(t.Context()) {
		if stopped++; stopped == 10 {
			break
		}
	}
}

// TestAuditTamperingOnDisk edits a real database file with raw SQL, as
// someone with the file would, triggers dropped, and checks that
// verification names the first bad entry.
func TestAuditTamperingOnDisk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sql    []string
		forge  bool // insert a forged entry with a correctly computed hash at 3
		expect bool // verify against the head seen before tampering
		seq    int64
		what   string
	}{
		{name: "edited field", sql: []string{`UPDATE audit_log SET target = 'dev-evil' WHERE seq = 3`}, seq: 3, what: "edited"},
		{name: "edited time", sql: []string{`UPDATE audit_log SET at = at + 1 WHERE seq = 2`}, seq: 2, what: "edited"},
		{name: "deleted middle row", sql: []string{`DELETE FROM audit_log WHERE seq = 3`}, seq: 3, what: "deleted"},
		{name: "inserted forged row", forge: true, seq: 4, what: "does not match the hash of entry 3"},
		{name: "truncated tail, head expected", sql: []string{`DELETE FROM audit_log WHERE seq > 3`}, expect: true, seq: 4,
			what: "removed from the end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "gatehouse.db")
			db := openSQLite(t, path)
			appendN(t, db, 5)
			before, err := verifyDB(t, db, audit.Head{})
			if err != nil || before.Seq != 5 {
				t.Fatalf("before tampering: %v, %v", before, err)
			}
			mustClose(t, db)
			raw := openSQLite(t, path)
			tamper(t, raw, tt.sql)
			if tt.forge {
				forge(t, raw)
			}
			expect := audit.Head{}
			if tt.expect {
				expect = before
			}
			_, err = verifyDB(t, raw, expect)
			var p *audit.Problem
			if !errors.As(err, &p) || p.Seq != tt.seq || !strings.Contains(p.What, tt.what) {
				t.Fatalf("Verify = %v; want a problem at %d about %q", err, tt.seq, tt.what)
			}
		})
	}
}

// TestAuditTruncatedTailWithoutHead is the limit the docs state: a log
// cut short is a valid shorter log unless a head was remembered.
func TestAuditTruncatedTailWithoutHead(t *testing.T) {
	t.Parallel()
	db := openSQLite(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	appendN(t, db, 5)
	tamper(t, db, []string{`DELETE FROM audit_log WHERE seq > 3`})
	if head, err := verifyDB(t, db, audit.Head{}); err != nil || head.Seq != 3 {
		t.Errorf("Verify = %v, %v; want a valid log of 3", head, err)
	}
}

func tamper(t *testing.T, db *store.DB, stmts []string) {
	t.Helper()
	ctx := context.Background()
	for _, q := range append([]string{`DROP TRIGGER IF EXISTS audit_log_no_update`, `DROP TRIGGER IF EXISTS audit_log_no_delete`}, stmts...) {
		if _, err := db.SQL().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// forge moves entries 3 and later up by one and puts a forged entry at 3
// whose hash is computed correctly over its fields and entry 2's hash.
func forge(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	var prev string
	var at int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT hash, at FROM audit_log WHERE seq = 2`).Scan(&prev, &at); err != nil {
		t.Fatal(err)
	}
	e := audit.Entry{Seq: 3, At: time.UnixMicro(at).UTC(), Actor: "token:alice", Source: "192.0.2.1", Action: "device.approve",
		Target: "dev-forged", Result: "ok", Detail: "{}", PrevHash: prev}
	e.Hash = audit.ComputeHash(e)
	tamper(t, db, []string{`UPDATE audit_log SET seq = -seq WHERE seq >= 3`, `UPDATE audit_log SET seq = 1 - seq WHERE seq < 0`})
	_, err := db.SQL().ExecContext(ctx, `INSERT INTO audit_log (seq, at, actor, source, request_id, action, target, result, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)`, e.Seq, at, e.Actor, e.Source, e.Action, e.Target, e.Result, e.Detail, e.PrevHash, e.Hash)
	if err != nil {
		t.Fatal(err)
	}
}
