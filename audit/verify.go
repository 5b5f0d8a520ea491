package audit

import (
	"fmt"
	"iter"
)

// Problem is the first thing wrong with a chain: which entry, and what.
type Problem struct {
	// Seq is the first entry that is wrong; for missing entries, the first
	// one missing.
	Seq  int64
	What string
}

func (p *Problem) Error() string { return fmt.Sprintf("audit log entry %d: %s", p.Seq, p.What) }

// Verify reads a whole log, oldest first, recomputing every hash and
// checking that seq runs 1, 2, 3... with each entry linked to the one
// before. It stops at the first problem, returned as a *Problem; an error
// from entries itself is returned as it is. It returns the head it reached.
//
// A chain alone cannot tell a log whose last entries were deleted from a
// shorter log: pass the head an earlier run returned as expect (the zero
// Head expects nothing) and Verify also fails when the log ends before it
// or holds a different entry there.
func Verify(entries iter.Seq2[Entry, error], expect Head) (Head, error) {
	var head Head
	for e, err := range entries {
		if err != nil {
			return head, err
		}
		if p := follows(e, head); p != nil {
			return head, p
		}
		if e.Seq == expect.Seq && e.Hash != expect.Hash {
			return head, &Problem{Seq: e.Seq, What: fmt.Sprintf(
				"its hash %s differs from the expected head %s: the log was rewritten up to here", e.Hash, expect)}
		}
		head = Head{Seq: e.Seq, Hash: e.Hash}
	}
	if expect.Seq > head.Seq {
		return head, &Problem{Seq: head.Seq + 1, What: fmt.Sprintf(
			"missing: the log ends at entry %d but the expected head is %s, so entries were removed from the end", head.Seq, expect)}
	}
	return head, nil
}

// follows checks that e is a sound successor of the chain ending at head.
func follows(e Entry, head Head) *Problem {
	want := head.Seq + 1
	switch {
	case e.Seq > want:
		return &Problem{Seq: want, What: fmt.Sprintf("missing: entry %d is followed by entry %d, so entries were deleted", head.Seq, e.Seq)}
	case e.Seq < want:
		return &Problem{Seq: e.Seq, What: fmt.Sprintf("out of order: it comes after entry %d", head.Seq)}
	}
	prev := GenesisHash
	if head.Seq > 0 {
		prev = head.Hash
	}
	if e.PrevHash != prev {
		if head.Seq == 0 {
			return &Problem{Seq: e.Seq, What: "its prev_hash is not 64 zeros, as the first entry's must be"}
		}
		return &Problem{Seq: e.Seq, What: fmt.Sprintf(
			"its prev_hash does not match the hash of entry %d: an entry before it was inserted, replaced or deleted", head.Seq)}
	}
	if got := ComputeHash(e); got != e.Hash {
		return &Problem{Seq: e.Seq, What: "its hash does not match its contents: the entry was edited"}
	}
	return nil
}
