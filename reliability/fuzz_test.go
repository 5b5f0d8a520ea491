package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var fuzzDecl = regexp.MustCompile(`(?m)^func (Fuzz\w*)\(\w+ \*testing\.F\)`)

// TestFuzzTargetsComplete: the scenario finds every fuzz target of the
// module, which holds only while each lives in a *_fuzz_test.go file; a
// Fuzz function in any other test file would be skipped, so it fails here.
func TestFuzzTargetsComplete(t *testing.T) {
	root, err := moduleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	targets, err := findFuzzTargets(root)
	if err != nil {
		t.Fatal(err)
	}
	found := map[fuzzTarget]bool{}
	for _, tg := range targets {
		found[tg] = true
	}
	want := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return skipDir(root, path, d.Name())
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := "./" + filepath.ToSlash(rel)
		if rel == "." {
			pkg = "."
		}
		for _, m := range fuzzDecl.FindAllStringSubmatch(string(src), -1) {
			want++
			if !strings.HasSuffix(path, "_fuzz_test.go") {
				t.Errorf("%s declares %s outside a *_fuzz_test.go file; the fuzz scenario would miss it", path, m[1])
			} else if !found[fuzzTarget{Pkg: pkg, Name: m[1]}] {
				t.Errorf("%s %s not found by findFuzzTargets", pkg, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != want || want == 0 {
		t.Errorf("findFuzzTargets found %d targets, the files declare %d", len(targets), want)
	}
	for _, must := range []fuzzTarget{{"./protocol", "FuzzVerify"}, {".", "FuzzValidateName"}, {"./roster", "FuzzRosterParse"}} {
		if !found[must] {
			t.Errorf("%s %s missing from %v", must.Pkg, must.Name, targets)
		}
	}
}

// The go command's output as it reads when a target passes and when it
// finds a crasher.
const (
	fuzzPassed = `fuzz: elapsed: 0s, gathering baseline coverage: 0/14 completed
fuzz: elapsed: 0s, gathering baseline coverage: 14/14 completed, now fuzzing with 2 workers
fuzz: elapsed: 3s, execs: 11573 (3852/sec), new interesting: 4 (total: 31)
fuzz: elapsed: 6s, execs: 28251 (5567/sec), new interesting: 4 (total: 31)
fuzz: elapsed: 6s, execs: 28251 (0/sec), new interesting: 4 (total: 31)
PASS
ok  	gatehouse/protocol	6.140s
`
	fuzzFailed = `fuzz: elapsed: 0s, gathering baseline coverage: 0/26 completed
fuzz: elapsed: 1s, gathering baseline coverage: 26/26 completed, now fuzzing with 2 workers
fuzz: elapsed: 1s, execs: 28 (39/sec), new interesting: 1 (total: 27)
--- FAIL: FuzzVerify (1.06s)
    --- FAIL: FuzzVerify (0.00s)
        verify_fuzz_test.go:98: the key cache changed the verdict

    Failing input written to testdata/fuzz/FuzzVerify/d54da5c86eedc0a2
    To re-run:
    go test -run=FuzzVerify/d54da5c86eedc0a2
FAIL
exit status 1
`
)

func TestParseFuzzOutput(t *testing.T) {
	if r := parseFuzzOutput("FuzzVerify", []byte(fuzzPassed)); r.execs != 28251 || r.corpus != 14 || r.failed || r.input != "" {
		t.Errorf("passing run read as %+v", r)
	}
	r := parseFuzzOutput("FuzzVerify", []byte(fuzzFailed))
	if r.execs != 28 || r.corpus != 26 || !r.failed || r.input != "testdata/fuzz/FuzzVerify/d54da5c86eedc0a2" ||
		!strings.Contains(r.summary, "the key cache changed the verdict") {
		t.Errorf("failing run read as %+v", r)
	}
	if r := parseFuzzOutput("FuzzOther", []byte(fuzzFailed)); r.failed {
		t.Errorf("another target's failure read as this one's: %+v", r)
	}
	if r := parseFuzzOutput("FuzzLoadIdentity", []byte(fuzzOutOfTime)); r.failed || !r.outOfTime {
		t.Errorf("a run whose -fuzztime ran out before the baseline read as %+v, want out of time, no crasher", r)
	}
	if r := parseFuzzOutput("FuzzVerifySession", []byte(fuzzDeadlineRace)); r.failed || !r.outOfTime || r.execs != 30600 {
		t.Errorf("a run the engine's deadline race ended read as %+v, want out of time, no crasher", r)
	}
}

// TestFuzzOutcome: a run whose engine ran out of time is handed back for
// another try, not made an error of the scenario (the go command exits 1
// for it, as for a crasher); any other exit without a crasher is one.
func TestFuzzOutcome(t *testing.T) {
	target := fuzzTarget{Pkg: "./protocol", Name: "FuzzVerifySession"}
	exit1 := exec.Command("sh", "-c", "exit 1").Run()
	if exit1 == nil {
		t.Fatal("sh -c 'exit 1' did not fail")
	}
	out := []byte(fuzzDeadlineRace)
	if run, err := fuzzOutcome(target, parseFuzzOutput(target.Name, out), out, exit1); err != nil || !run.outOfTime {
		t.Errorf("out of time: %+v, %v; want out of time and no error, for runFuzz to try again", run, err)
	}
	out = []byte(fuzzFailed)
	if run, err := fuzzOutcome(fuzzTarget{Pkg: "./protocol", Name: "FuzzVerify"}, parseFuzzOutput("FuzzVerify", out), out, exit1); err != nil || !run.failed {
		t.Errorf("crasher: %+v, %v; want failed and no error", run, err)
	}
	out = []byte("# gatehouse/protocol\nprotocol/x.go:1:1: syntax error\nFAIL\n")
	if _, err := fuzzOutcome(target, parseFuzzOutput(target.Name, out), out, exit1); err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("build failure: %v; want an error naming it", err)
	}
}

// fuzzDeadlineRace is what the go command printed in CI on 2026-12-06
// for a 2 s run on a loaded machine: the engine fuzzed (30,600 runs past
// its baseline) and then failed as its deadline came, writing no input
// (go.dev/issue/75804).
const fuzzDeadlineRace = `fuzz: elapsed: 0s, gathering baseline coverage: 0/11 completed
fuzz: elapsed: 0s, gathering baseline coverage: 11/11 completed, now fuzzing with 2 workers
fuzz: elapsed: 2s, execs: 30600 (13255/sec), new interesting: 4 (total: 15)
--- FAIL: FuzzVerifySession (2.31s)
    context deadline exceeded
FAIL
exit status 1
FAIL	gatehouse/protocol	2.321s
`

// fuzzOutOfTime is what the go command printed in CI for a 2 s run on a
// loaded machine: the engine's deadline passed before its baseline
// coverage was gathered, and no input was written.
const fuzzOutOfTime = `fuzz: elapsed: 0s, gathering baseline coverage: 0/12 completed
--- FAIL: FuzzLoadIdentity (3.09s)
    context deadline exceeded
FAIL
exit status 1
FAIL	gatehouse/agent	3.102s
`
