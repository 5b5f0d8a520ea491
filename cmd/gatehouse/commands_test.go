package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runMain runs the whole CLI as the process would.
func runMain(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

// TestUsageNamesEveryCommand holds the usage to the dispatcher: every
// command it runs, and every subcommand of a group, is in the top-level
// usage and in its group's help.
func TestUsageNamesEveryCommand(t *testing.T) {
	code, out, _ := runMain(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range commands() {
		i := strings.Index(out, "\n  gatehouse "+c.name)
		if i < 0 {
			t.Errorf("usage lacks %q:\n%s", c.name, out)
			continue
		}
		if c.group == nil {
			continue
		}
		line, _, _ := strings.Cut(out[i+1:], "\n")
		for _, sub := range c.group.cmds {
			if !slices.Contains(strings.Split(strings.Fields(line)[2], "|"), sub.name) {
				t.Errorf("usage line %q lacks %s", line, sub.name)
			}
			if !regexp.MustCompile(`(?m)^  ` + sub.name + `\b`).MatchString(c.group.help) {
				t.Errorf("'gatehouse %s --help' does not list %s:\n%s", c.name, sub.name, c.group.help)
			}
		}
	}
	// What the dispatcher runs is what the table holds: a name not in it
	// is refused.
	if code, _, _ := runMain(t, nil, "retry"); code != 2 {
		t.Errorf("a subcommand name at the top level: exit %d", code)
	}
	if _, ok := devicesGroup.find("retry"); !ok || !strings.Contains(out, "|retry|") {
		t.Error("devices retry is not in the table or the usage")
	}
}

// TestHelpEverywhere walks the command table: --help and -h on every
// command, group and subcommand print its help on stdout, nothing on
// stderr, and exit 0, also after other arguments.
func TestHelpEverywhere(t *testing.T) {
	env := map[string]string{"GATEHOUSE_TOKEN": cliToken}
	check := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := runMain(t, env, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, want) {
			t.Errorf("gatehouse %s: exit %d, stdout %q, stderr %q; want exit 0 and stdout with %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}
	for _, c := range commands() {
		for _, h := range []string{"--help", "-h"} {
			check(c.name, c.name, h)
		}
		check(c.name, "help", c.name)
		if c.group == nil {
			continue
		}
		for _, sub := range c.group.cmds {
			for _, h := range []string{"--help", "-h"} {
				check(c.name+" "+sub.name, c.name, sub.name, h)
			}
			check(c.name+" "+sub.name, c.name, sub.name, "some-id", "--help")
			check(c.name+" "+sub.name, "help", c.name, sub.name)
		}
	}
	check("gatehouse provisions edge gateways", "help")
	check("usage: gatehouse devices approve --from-csv FILE", "devices", "approve", "--from-csv", "gateways.csv", "--help")
}

// TestHelpRunsNothing: --help where a flag wants a value is still a request
// for help, not the value: the command does not run.
func TestHelpRunsNothing(t *testing.T) {
	api := newFakeAPI(t, nil)
	for _, args := range [][]string{{"set", "d1", "--name", "--help"}, {"approve", "d1", "--name", "-h"}, {"dismiss", "d1", "--help"}} {
		code, out, errOut := runMain(t, envFor(api), append([]string{"devices"}, args...)...)
		if code != 0 || !strings.Contains(out, "usage: gatehouse devices "+args[0]) || errOut != "" {
			t.Errorf("devices %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
		}
	}
	if got := api.requests(); len(got) != 0 {
		t.Errorf("help sent requests: %+v", got)
	}
}

func TestDidYouMean(t *testing.T) {
	env := map[string]string{"GATEHOUSE_TOKEN": cliToken}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"devcies"}, `unknown command "devcies"; did you mean "devices"?`},
		{[]string{"verison"}, `did you mean "version"?`},
		{[]string{"devices", "lsit"}, `unknown devices command "lsit"; did you mean "list"?`},
		{[]string{"devices", "aprove", "x"}, `did you mean "approve"?`},
		{[]string{"tokens", "revok"}, `did you mean "revoke"?`},
		{[]string{"devices", "list", "--stat", "pending"}, "did you mean --state?"},
		{[]string{"devices", "approve", "d1", "--nmae", "gw"}, "did you mean --name?"},
		{[]string{"devices", "list", "--wach"}, "did you mean --watch?"},
		{[]string{"serve", "--lisen", "127.0.0.1:0"}, "did you mean --listen?"},
		{[]string{"demo", "--gateway", "2"}, "did you mean --gateways?"},
		{[]string{"migrate", "--bd", "x"}, "did you mean --db?"},
		{[]string{"config", "check", "--onlin"}, "did you mean --online?"},
		{[]string{"completion", "bas"}, `did you mean "bash"?`},
	}
	for _, tt := range tests {
		code, _, errOut := runMain(t, env, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("gatehouse %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
	// Far from everything: no guess.
	for _, args := range [][]string{{"frobnicate"}, {"devices", "xyzzy"}, {"devices", "list", "--qqqq"}} {
		if code, _, errOut := runMain(t, env, args...); code != 2 || strings.Contains(errOut, "did you mean") {
			t.Errorf("gatehouse %s: exit %d, stderr %q; want exit 2 and no guess", strings.Join(args, " "), code, errOut)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"devcies", "devices", 1}, {"stat", "state", 1}, {"list", "lsit", 1}, {"kitten", "sitting", 3}, {"abc", "", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestServerURL(t *testing.T) {
	good := map[string]string{
		"127.0.0.1:8080":                 "http://127.0.0.1:8080",
		" localhost:8080 ":               "http://localhost:8080",
		":8080":                          "http://127.0.0.1:8080",
		"[::1]:8080":                     "http://[::1]:8080",
		"gatehouse.example.com:443":      "https://gatehouse.example.com:443",
		"gw.example.com:8443/gatehouse":  "http://gw.example.com:8443/gatehouse",
		"http://127.0.0.1:8080":          "http://127.0.0.1:8080",
		"https://gatehouse.example.com/": "https://gatehouse.example.com/",
	}
	for in, want := range good {
		if got, err := serverURL(in); err != nil || got != want {
			t.Errorf("serverURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                            "empty",
		"gatehouse.example.com":       "want HOST:PORT",
		"127.0.0.1:http":              `port "http" is not a number`,
		"127.0.0.1:0":                 "port",
		"127.0.0.1:70000":             "port",
		"bad host:80":                 "is not a host name",
		"ftp://h:21":                  "not a server URL",
		"http://":                     "not a server URL",
		"http://u:secret@h:80":        "no credentials",
		"http://h:99999":              "port",
		"http://%zz":                  "not a server URL",
		"https://h/?token=x":          "no credentials, query",
		"gatehouse.example.com:8080x": "port",
	}
	for in, want := range bad {
		_, err := serverURL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serverURL(%q) error = %v, want one with %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("serverURL(%q) error shows the password: %v", in, err)
		}
	}
}

// completionScript runs 'gatehouse completion SHELL'.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, errOut := runMain(t, nil, "completion", shell)
	if code != 0 || errOut != "" {
		t.Fatalf("completion %s: exit %d, stderr %s", shell, code, errOut)
	}
	return out
}

// helpFlags reads the flags a command's help lists, as the flag package
// prints them ("  -name value"): a second source to hold completion to.
func helpFlags(t *testing.T, args ...string) []string {
	t.Helper()
	_, out, _ := runMain(t, nil, append(args, "--help")...)
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-zA-Z][\w-]*)`).FindAllStringSubmatch(out, -1) {
		names = append(names, dashed(m[1]))
	}
	return names
}

// everyLeaf calls fn with the words of every command that takes flags.
func everyLeaf(fn func(path []string)) {
	for _, c := range commands() {
		if c.group == nil {
			fn([]string{c.name})
			continue
		}
		for _, s := range c.group.cmds {
			fn([]string{c.name, s.name})
		}
	}
}

func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := completionScript(t, "bash")
	path := filepath.Join(t.TempDir(), "gatehouse.bash")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// complete asks the script what it offers for a command line whose
	// last word is being typed.
	complete := func(words ...string) []string {
		t.Helper()
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := `source "$1"; COMP_WORDS=(` + strings.Join(quoted, " ") + `); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _gatehouse; printf '%s\n' "${COMPREPLY[@]}"`
		out, err := exec.Command(bash, "-c", prog, "bash", path).Output()
		if err != nil {
			t.Fatalf("completing %q: %v", words, err)
		}
		return strings.Fields(string(out))
	}
	var all []string
	for _, c := range commands() {
		all = append(all, c.name)
	}
	if got := complete("gatehouse", ""); !slices.Equal(got, all) {
		t.Errorf("commands offered: %q, want %q", got, all)
	}
	if got := complete("gatehouse", "dev"); !slices.Equal(got, []string{"devices"}) {
		t.Errorf("gatehouse dev<TAB>: %q", got)
	}
	if got := complete("gatehouse", "devices", ""); !slices.Equal(got, devicesGroup.names()) {
		t.Errorf("devices subcommands offered: %q", got)
	}
	if got := complete("gatehouse", "devices", "list", "--st"); !slices.Equal(got, []string{"--state"}) {
		t.Errorf("devices list --st<TAB>: %q", got)
	}
	if got := complete("gatehouse", "devices", "list", "--state", "pe"); !slices.Equal(got, []string{"pending"}) {
		t.Errorf("devices list --state pe<TAB>: %q", got)
	}
	if got := complete("gatehouse", "completion", "f"); !slices.Equal(got, []string{"fish"}) {
		t.Errorf("completion f<TAB>: %q", got)
	}
	if got := complete("gatehouse", "devices", "approve", "--w"); !slices.Equal(got, []string{"--wait"}) {
		t.Errorf("devices approve --w<TAB>: %q", got)
	}
	// Every flag every help lists, on its own command line.
	everyLeaf(func(p []string) {
		want := helpFlags(t, p...)
		got := complete(append(append([]string{"gatehouse"}, p...), "-")...)
		for _, f := range want {
			if !slices.Contains(got, f) {
				t.Errorf("gatehouse %s -<TAB> lacks %s: %q", strings.Join(p, " "), f, got)
			}
		}
	})
}

// TestCompletionZshFish checks the scripts with their shells where they
// are installed, and else their make-up: every command, subcommand and
// flag, and balanced blocks.
func TestCompletionZshFish(t *testing.T) {
	zsh, fish := completionScript(t, "zsh"), completionScript(t, "fish")
	if !strings.HasPrefix(zsh, "#compdef gatehouse\n") {
		t.Error("zsh script does not start with #compdef")
	}
	for _, kw := range [][2]string{{"case ", "esac"}, {"if ", "fi"}} {
		if o, c := regexp.MustCompile(`(?m)^\s*`+kw[0]).FindAllString(zsh, -1), regexp.MustCompile(`(?m)\b`+kw[1]+`\b`).FindAllString(zsh, -1); len(o) != len(c) {
			t.Errorf("zsh script: %d %q, %d %q", len(o), kw[0], len(c), kw[1])
		}
	}
	if o, c := strings.Count(fish, "\nfunction "), len(regexp.MustCompile(`(?m)^end$`).FindAllString(fish, -1)); o != c || o == 0 {
		t.Errorf("fish script: %d functions, %d ends", o, c)
	}
	for _, c := range commands() {
		if !strings.Contains(zsh, "\n    "+c.name+")\n") {
			t.Errorf("zsh script has no case for %s", c.name)
		}
		if !strings.Contains(fish, "-n '__gatehouse_at' -a "+c.name+" ") {
			t.Errorf("fish script does not offer %s", c.name)
		}
		if c.group != nil {
			for _, s := range c.group.cmds {
				if !strings.Contains(fish, "-n '__gatehouse_at "+c.name+"' -a "+s.name+"\n") {
					t.Errorf("fish script does not offer %s %s", c.name, s.name)
				}
			}
		}
	}
	everyLeaf(func(p []string) {
		for _, f := range helpFlags(t, p...) {
			opt := "-l " + strings.TrimLeft(f, "-")
			if len(f) == 2 {
				opt = "-o " + f[1:]
			}
			if !strings.Contains(fish, "-n '__gatehouse_in "+strings.Join(p, " ")+"' "+opt+" ") {
				t.Errorf("fish script lacks %s for %s", f, strings.Join(p, " "))
			}
		}
	})
	for name, script := range map[string]string{"zsh": zsh, "fish": fish} {
		sh, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		args := []string{"-n"}
		if name == "fish" {
			args = []string{"--no-execute"}
		}
		cmd := exec.Command(sh, append(args, "/dev/stdin")...)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s rejects its script: %v\n%s", name, err, out)
		}
	}
}

// TestFlagProbeDoesNothing: learning a command's flags runs none of it,
// so completion is safe for every command, serve included.
func TestFlagProbeDoesNothing(t *testing.T) {
	probe := &flagProbe{Writer: &bytes.Buffer{}}
	code := runBackup(context.Background(), []string{"-h"}, &bytes.Buffer{}, probe, func(string) string { return "" })
	if probe.fs == nil || probe.fs.Lookup("db") == nil || code != 0 {
		t.Fatalf("probe of backup: flag set %v, exit %d", probe.fs, code)
	}
	var n int
	probe.fs.VisitAll(func(*flag.Flag) { n++ })
	if n != 1 {
		t.Errorf("backup has %d flags, want 1", n)
	}
	specs := completionSpecs(context.Background())
	if len(specs) != len(commands()) {
		t.Fatalf("%d specs for %d commands", len(specs), len(commands()))
	}
}
