package provision

import (
	"context"
	"fmt"
	"sync"

	"gatehouse/store"
)

// maxGroup bounds how many step transactions share one commit, so the
// shared transaction stays short next to the others waiting for the
// database.
const maxGroup = 64

// groupCommit runs the short transactions of provisioning steps (marking a
// step running, a backend's record, a step's result) that wait at the same
// moment in one database transaction, each in a savepoint of its own, and
// commits them once. Each caller still returns only after its part has
// committed, and a part that fails leaves nothing and does not hold the
// others back, so every promise of a transaction of its own holds; what is
// saved is the per-transaction work of the one database writer (begin,
// commit, writing the pages the parts share, handing the connection on),
// nine times per gateway in a bulk approval.
//
// No part waits for company: the first caller leads at once, and those that
// arrive while a group waits for the connection or is written make up the
// next. A caller's wait is bounded by the transactions ahead of it, not by
// its context, as a transaction's commit is.
type groupCommit struct {
	mu      sync.Mutex
	waiting []*groupPart
	leading bool // a leader is writing or about to write a group
}

type groupPart struct {
	ctx  context.Context
	fn   func(context.Context, *store.Tx) error
	done chan error
}

// do runs fn in a part of a shared transaction and returns once that has
// committed, with fn's error or the transaction's. fn gets ctx without its
// cancellation, since a statement cut short would undo the other parts
// too; fn's own work is short.
func (g *groupCommit) do(ctx context.Context, db *store.DB, fn func(context.Context, *store.Tx) error) error {
	p := &groupPart{ctx: context.WithoutCancel(ctx), fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, p)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		g.lead(db)
	}
	return <-p.done
}

// lead writes one group: those waiting when the database connection is
// won, so parts that arrive while the leader waits for it join. Should
// more arrive meanwhile, a new leader writes them next.
func (g *groupCommit) lead(db *store.DB) {
	var group []*groupPart
	take := func() {
		g.mu.Lock()
		n := min(len(g.waiting), maxGroup)
		group = append(group[:0], g.waiting[:n]...)
		g.waiting = append(g.waiting[:0], g.waiting[n:]...)
		g.mu.Unlock()
	}
	errs := make([]error, 0, maxGroup)
	err := db.InTx(context.Background(), func(tx *store.Tx) error {
		take()
		errs = errs[:0]
		for _, p := range group {
			fnErr, txErr := tx.Savepoint(p.ctx, func(tx *store.Tx) error { return runPart(p, tx) })
			if txErr != nil {
				return txErr
			}
			errs = append(errs, fnErr)
		}
		return nil
	})
	if group == nil {
		take() // the transaction never began: its parts fail with it
	}
	for i, p := range group {
		switch {
		case err != nil:
			p.done <- err
		default:
			p.done <- errs[i]
		}
	}
	g.mu.Lock()
	more := len(g.waiting) > 0
	g.leading = more
	g.mu.Unlock()
	if more {
		go g.lead(db)
	}
}

// runPart runs one part, a panic in it failing that part alone: the other
// parts' callers would otherwise wait for ever.
func runPart(p *groupPart, tx *store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("provision: panic in a step transaction: %v", r)
		}
	}()
	return p.fn(p.ctx, tx)
}
