package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Scenario is one reliability scenario. Each file of this package that
// holds one registers it from init, so scenarios are added without editing
// a shared list.
type Scenario struct {
	Name  string // one word, the command-line name
	About string // one line: what it does and what it proves
	Order int    // place in the default run and the table
	Run   func(ctx context.Context, h *Harness, size Size) (*Result, error)
}

// Size is how big a run is: Short is the size CI runs, a few seconds to a
// minute; otherwise each scenario runs at the size its issue asks for.
type Size struct {
	Short bool
}

// Pick returns short in a short run and full otherwise.
func (s Size) Pick(short, full int) int {
	if s.Short {
		return short
	}
	return full
}

// PickDuration is Pick for durations.
func (s Size) PickDuration(short, full time.Duration) time.Duration {
	if s.Short {
		return short
	}
	return full
}

var registered []Scenario

func register(s Scenario) { registered = append(registered, s) }

func sorted() []Scenario {
	out := slices.Clone(registered)
	slices.SortStableFunc(out, func(a, b Scenario) int { return a.Order - b.Order })
	return out
}

// Result is what one scenario did. Losses and Duplicates are what the
// scenario found missing or doubled when it counted at the end (bundles,
// backend objects, approvals, audit entries); both must be zero.
type Result struct {
	Scenario   string
	Operations int           // what the scenario did: provisions, requests, kills...
	Faults     int           // faults injected: kills, failed calls, full disks...
	Losses     int           // things that should be there and are not
	Duplicates int           // things that are there more than once
	Took       time.Duration // wall-clock time of the whole scenario
	Notes      []string      // the scenario's own figures, "name value" each
	Details    []string      // longer output (a sampled table), printed before the summary
	Err        error         // the scenario could not run, or a check failed
	// Skipped, when set, says why the scenario did not run here (what it
	// needs and is missing); such a row neither passes nor fails the run.
	Skipped string
}

// Note adds one of the scenario's own figures to its row.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Passed reports whether nothing was lost or doubled and every check held.
func (r *Result) Passed() bool { return r.Err == nil && r.Losses == 0 && r.Duplicates == 0 }

func printTable(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tOPERATIONS\tFAULTS\tLOSSES\tDUPLICATES\tTIME\tRESULT\tFIGURES")
	for _, r := range results {
		verdict, notes := "pass", r.Notes
		switch {
		case !r.Passed():
			verdict = "FAIL"
		case r.Skipped != "":
			verdict, notes = "skip", []string{r.Skipped}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", r.Scenario, r.Operations, r.Faults, r.Losses,
			r.Duplicates, r.Took.Round(100*time.Millisecond), verdict, strings.Join(notes, ", "))
	}
	tw.Flush()
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(w, "%s: %v\n", r.Scenario, r.Err)
		}
	}
}
