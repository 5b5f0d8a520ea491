// Command reliability runs gatehouse's reliability scenarios against the
// real server process and simulated backends on loopback, and prints one
// table of what each did: operations, faults injected, losses, duplicates,
// time. A scenario passes when it lost nothing and duplicated nothing.
//
//	go run ./reliability                 every scenario at full size
//	go run ./reliability -short crash    one scenario, the size CI runs
//	go run ./reliability -list           the scenarios and what each proves
//
// docs/testing.md describes each scenario and its long run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: go run ./reliability [-short] [-dir DIR] [-keep] [SCENARIO...]

Runs the named scenarios (default: all) against a freshly built gatehouse
serve process and simulated backends, and prints one table of results.
Exit status 0 when every scenario passed, 1 when one failed, 2 on bad usage.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reliability", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	short := fs.Bool("short", false, "run each scenario at the size CI runs (seconds, not minutes)")
	dir := fs.String("dir", "", "scratch `DIR` for databases, logs and binaries (default: a new temporary directory)")
	keep := fs.Bool("keep", false, "keep the scratch directory (its server logs) after the run")
	list := fs.Bool("list", false, "list the scenarios and exit")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *list {
		for _, s := range sorted() {
			fmt.Fprintf(stdout, "%-10s %s\n", s.Name, s.About)
		}
		return 0
	}
	chosen, err := choose(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "reliability:", err)
		return 2
	}
	h, err := NewHarness(ctx, *dir, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "reliability:", err)
		return 1
	}
	if !*keep {
		defer h.Close()
	} else {
		fmt.Fprintln(stderr, "reliability: keeping", h.Dir)
	}
	var results []*Result
	for _, s := range chosen {
		results = append(results, runOne(ctx, h, s, Size{Short: *short}))
	}
	printTable(stdout, results)
	for _, r := range results {
		if !r.Passed() {
			return 1
		}
	}
	return 0
}

// runOne runs one scenario in a scratch directory of its own.
func runOne(ctx context.Context, h *Harness, s Scenario, size Size) *Result {
	fmt.Fprintf(h.Progress, "reliability: %s: %s\n", s.Name, s.About)
	sub := h.Sub(s.Name)
	if size.Short {
		// The hub's S1 quota (100 identity calls a minute) would make every
		// short run minutes long on the approvals' name checks alone; a
		// short run proves the same things at an S3 hub's pace. Full runs
		// keep the S1 pace, and bench/ measures the quotas themselves.
		sub.ServerEnv = append(sub.ServerEnv, "GATEHOUSE_IOTHUB_RATE_LIMIT=5000")
	}
	r, err := s.Run(ctx, sub, size)
	if r == nil {
		r = &Result{}
	}
	r.Scenario, r.Err = s.Name, err
	for _, d := range r.Details {
		fmt.Fprintln(h.Progress, d)
	}
	return r
}

func choose(names []string) ([]Scenario, error) {
	all := sorted()
	if len(names) == 0 {
		return all, nil
	}
	var out []Scenario
	for _, n := range names {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == n })
		if i < 0 {
			var known []string
			for _, s := range all {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("no scenario %q; the scenarios are %s", n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}
