package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The fuzz scenario runs every fuzz target of the module, one after
// another, with `go test -fuzz`: the parsers of everything a gateway or an
// operator's file can send (signed requests, keys, CSRs, enrollment JSON,
// bundles, names, manifests, config files, allowlists). A target that
// fails has found a crasher, which Go writes to the target's
// testdata/fuzz directory, ready to be kept as corpus beside its fix.
func init() {
	register(Scenario{
		Name:  "fuzz",
		About: "runs every Fuzz target of the module in turn (2 s each short, 60 s each full); losses = crashers found",
		Order: 80,
		Run:   runFuzz,
	})
}

// fuzzTime is how long each target fuzzes: a few seconds in CI, which
// replays the corpus and tries a few thousand new inputs, and a minute in
// a full run. The first fuzz build of a package costs more than either.
func fuzzTime(size Size) time.Duration {
	return size.PickDuration(2*time.Second, 60*time.Second)
}

// fuzzBuildBudget bounds what one target may take beyond its fuzzing time:
// the instrumented build, the corpus replay, the last minimization.
const fuzzBuildBudget = 10 * time.Minute

// fuzzTarget is one Fuzz function and the package directory that holds it.
type fuzzTarget struct {
	Pkg  string // "./protocol", "." for the module root
	Name string // "FuzzVerify"
}

// fuzzRun is what one `go test -fuzz` did.
type fuzzRun struct {
	execs   int
	corpus  int    // inputs replayed before fuzzing: seeds, testdata, cache
	failed  bool   // the target failed: a crasher
	input   string // where Go wrote the failing input
	summary string // the failure's first lines, for the report
	// outOfTime: the run failed with "context deadline exceeded" and no
	// failing input. That is the go command's fuzzing engine, not a
	// crasher: its -fuzztime ran out before its workers had replayed the
	// corpus (a loaded machine, a target whose seeds are slow), or it ran
	// out while a worker was still answering, a race in Go 1.26's fuzzing
	// coordinator (go.dev/issue/75804, fixed in Go 1.27) that a loaded
	// machine makes likelier.
	outOfTime bool
}

func runFuzz(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	defer func() { r.Took = time.Since(start) }()
	root, err := moduleRoot(ctx)
	if err != nil {
		return r, err
	}
	targets, err := findFuzzTargets(root)
	if err != nil {
		return r, err
	}
	if len(targets) == 0 {
		return r, fmt.Errorf("no Fuzz targets in any *_fuzz_test.go under %s", root)
	}
	d := fuzzTime(size)
	for _, t := range targets {
		fmt.Fprintf(h.Progress, "reliability: fuzz: %s %s for %s\n", t.Pkg, t.Name, d)
		run, err := fuzzOne(ctx, root, t, d)
		for try := 1; err == nil && run.outOfTime && try <= fuzzRetries; try++ {
			fmt.Fprintf(h.Progress, "reliability: fuzz: %s %s: the fuzzing engine ran out of time, not a crasher; again for %s\n", t.Pkg, t.Name, 4*d)
			run, err = fuzzOne(ctx, root, t, 4*d)
		}
		if err == nil && run.outOfTime {
			err = fmt.Errorf("fuzz %s %s: the fuzzing engine ran out of time %d times in a row:\n%s", t.Pkg, t.Name, fuzzRetries+1, run.summary)
		}
		if err != nil {
			return r, err
		}
		r.Operations += run.execs
		if run.failed {
			r.Losses++
			r.Note("%s FAILED", t.Name)
			r.Details = append(r.Details, fmt.Sprintf("fuzz: %s %s found a crasher, written to %s:\n%s",
				t.Pkg, t.Name, filepath.Join(t.Pkg, run.input), run.summary))
			continue
		}
		r.Note("%s %d (corpus %d)", t.Name, run.execs, run.corpus)
	}
	return r, nil
}

// moduleRoot is the directory of the go.mod the go command uses here.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == "/dev/null" {
		return "", errors.New("not inside the gatehouse module: run from its checkout")
	}
	return filepath.Dir(mod), nil
}

// findFuzzTargets lists every `func FuzzX(f *testing.F)` declared in a
// *_fuzz_test.go file under root, so a new target joins the scenario by
// being written. Directories Go ignores (testdata, _ and . prefixed) are
// skipped, as are nested modules.
func findFuzzTargets(root string) ([]fuzzTarget, error) {
	var out []fuzzTarget
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return skipDir(root, path, d.Name())
		}
		if !strings.HasSuffix(path, "_fuzz_test.go") {
			return nil
		}
		names, err := fuzzFuncs(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := "./" + filepath.ToSlash(rel)
		if rel == "." {
			pkg = "."
		}
		for _, n := range names {
			out = append(out, fuzzTarget{Pkg: pkg, Name: n})
		}
		return nil
	})
	slices.SortFunc(out, func(a, b fuzzTarget) int { return strings.Compare(a.Pkg+" "+a.Name, b.Pkg+" "+b.Name) })
	return out, err
}

func skipDir(root, path, name string) error {
	if path == root {
		return nil
	}
	if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return filepath.SkipDir
	}
	if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
		return filepath.SkipDir
	}
	return nil
}

// fuzzFuncs are the fuzz targets one test file declares: top-level
// functions named Fuzz... taking one *testing.F.
func fuzzFuncs(path string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("fuzz: %w", err)
	}
	var names []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Fuzz") && takesTestingF(fn) {
			names = append(names, fn.Name.Name)
		}
	}
	return names, nil
}

func takesTestingF(fn *ast.FuncDecl) bool {
	params := fn.Type.Params.List
	if len(params) != 1 || len(params[0].Names) > 1 {
		return false
	}
	star, ok := params[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "F"
}

// fuzzRetries is how many more runs a target gets whose engine ran out of
// time (fuzzRun.outOfTime) before the scenario gives up on it.
const fuzzRetries = 2

// fuzzOne runs one target.
func fuzzOne(ctx context.Context, root string, t fuzzTarget, d time.Duration) (fuzzRun, error) {
	ctx, cancel := context.WithTimeout(ctx, d+fuzzBuildBudget)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+t.Name+"$", "-fuzztime", d.String(), t.Pkg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return fuzzOutcome(t, parseFuzzOutput(t.Name, out), out, err)
}

// fuzzOutcome judges a run by how the go command ended and what it
// printed: a run that fails without the target failing (a build error, a
// timeout of the whole command) is an error of the scenario, not a
// crasher; one whose engine ran out of time is neither, and its caller
// runs it again.
func fuzzOutcome(t fuzzTarget, run fuzzRun, out []byte, err error) (fuzzRun, error) {
	if err != nil && !run.failed && !run.outOfTime {
		return run, fmt.Errorf("fuzz %s %s: %w\n%s", t.Pkg, t.Name, err, tail(out, 20))
	}
	return run, nil
}

var (
	execsLine   = regexp.MustCompile(`^fuzz: elapsed: \S+, execs: (\d+) `)
	corpusLine  = regexp.MustCompile(`^fuzz: elapsed: \S+, gathering baseline coverage: \d+/(\d+) completed`)
	failedInput = regexp.MustCompile(`Failing input written to (\S+)`)
)

// parseFuzzOutput reads the go command's fuzzing output: the size of the
// corpus replayed first, the last progress line's count of executions
// (which leaves the replay out), and whether (and where) it found a
// failing input.
func parseFuzzOutput(name string, out []byte) fuzzRun {
	var run fuzzRun
	sc := bufio.NewScanner(bytes.NewReader(out))
	var failure []string
	for sc.Scan() {
		line := sc.Text()
		if m := execsLine.FindStringSubmatch(line); m != nil {
			run.execs, _ = strconv.Atoi(m[1])
			continue
		}
		if m := corpusLine.FindStringSubmatch(line); m != nil {
			run.corpus, _ = strconv.Atoi(m[1])
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "--- FAIL: "+name) {
			run.failed = true
		}
		if m := failedInput.FindStringSubmatch(line); m != nil {
			run.input = m[1]
		}
		if run.failed && len(failure) < 12 {
			failure = append(failure, line)
		}
	}
	run.summary = strings.Join(failure, "\n")
	if run.failed && run.input == "" && bytes.Contains(out, []byte("context deadline exceeded")) {
		run.failed, run.outOfTime = false, true
	}
	return run
}

func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
