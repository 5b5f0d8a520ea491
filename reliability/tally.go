package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// tally counts what the end of a scenario found missing or doubled, with a
// line for each so a failure says what.
type tally struct {
	losses, dups int
	problems     []string
}

func (t *tally) lost(format string, args ...any) {
	t.losses++
	t.problems = append(t.problems, "lost: "+fmt.Sprintf(format, args...))
}

func (t *tally) doubled(format string, args ...any) {
	t.dups++
	t.problems = append(t.problems, "doubled: "+fmt.Sprintf(format, args...))
}

// shownProblems caps the lines a failing run prints.
const shownProblems = 30

func (t *tally) apply(r *Result) {
	r.Losses, r.Duplicates = t.losses, t.dups
	for i, p := range t.problems {
		if i == shownProblems {
			r.Details = append(r.Details, fmt.Sprintf("... and %d more", len(t.problems)-i))
			break
		}
		r.Details = append(r.Details, "  "+p)
	}
}

// add records a problem that lost and doubled things at once (a gateway
// with two enrollments and no certificate, say).
func (t *tally) add(losses, dups int, format string, args ...any) {
	t.losses += losses
	t.dups += dups
	t.problems = append(t.problems, fmt.Sprintf(format, args...))
}

// err is nil when nothing was found, else the count and the first few.
func (t *tally) err() error {
	if len(t.problems) == 0 {
		return nil
	}
	first := t.problems[:min(5, len(t.problems))]
	return fmt.Errorf("%d problems with the backends' objects, first: %s", len(t.problems), strings.Join(first, "; "))
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
