package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// quoted and dashed say how didYouMean writes a candidate: a command
// name in quotes, a flag with its dashes.
func quoted(s string) string { return fmt.Sprintf("%q", s) }

func dashed(s string) string {
	if len(s) == 1 {
		return "-" + s
	}
	return "--" + s
}

// didYouMean is "; did you mean X?" naming the candidates closest to typed,
// or "" when none is close enough to be a likely typo.
func didYouMean(typed string, candidates []string, show func(string) string) string {
	best := closest(typed, candidates)
	if len(best) == 0 {
		return ""
	}
	shown := make([]string, len(best))
	for i, b := range best {
		shown[i] = show(b)
	}
	return "; did you mean " + strings.Join(shown, " or ") + "?"
}

// closest returns the candidates nearest typed in edit distance, when that
// distance is small for typed's length (a third of it, at least 1), and
// else the candidates typed is the start of, if one or two.
func closest(typed string, candidates []string) []string {
	typed = strings.ToLower(typed)
	limit := max(1, len([]rune(typed))/3)
	var best []string
	bestD := limit + 1
	for _, c := range candidates {
		d := editDistance(typed, strings.ToLower(c))
		switch {
		case d < bestD:
			best, bestD = []string{c}, d
		case d == bestD:
			best = append(best, c)
		}
	}
	if len(best) == 0 && len(typed) >= 2 {
		for _, c := range candidates {
			if strings.HasPrefix(strings.ToLower(c), typed) {
				best = append(best, c)
			}
		}
		if len(best) > 2 {
			best = nil // "--s" could be anything
		}
	}
	sort.Strings(best)
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost 1, so the
// common "devcies" is one step from "devices".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// flagProbe, as a flag set's output, makes parseFlags hand over the flag
// set instead of parsing: completion learns each command's flags from the
// flag set the command really parses with.
type flagProbe struct {
	io.Writer
	fs *flag.FlagSet
}

// parseFlags parses args like fs.Parse, and on an unknown flag also names
// the defined flags it is a likely typo of. Errors and the usage go to
// fs's output as fs.Parse would print them.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if p, ok := fs.Output().(*flagProbe); ok {
		p.fs = fs
		return flag.ErrHelp
	}
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if err == nil {
		return nil
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(out, err)
		if hint := flagHint(fs, err); hint != "" {
			fmt.Fprintln(out, hint)
		}
	}
	if usage != nil {
		usage()
	} else {
		fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
	}
	return err
}

// flagExit is the exit code of a command whose flags did not parse: 0 when
// help was asked for, else 2.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// flagHint is "did you mean --X?" for the flag package's "flag provided but
// not defined: -NAME", or "".
func flagHint(fs *flag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return ""
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	hint := didYouMean(strings.TrimLeft(name, "-"), names, dashed)
	if hint == "" {
		return ""
	}
	return strings.TrimPrefix(hint, "; ")
}
