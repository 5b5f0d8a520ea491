// Command gatehouse is the gatehouse server, its demo, and the operator CLI.
package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// stdin is where commands read passwords from; tests replace it.
var stdin io.Reader = os.Stdin

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// mainFunc is how the process runs a top-level command.
type mainFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int

// command is one top-level command. The dispatcher, the top-level usage,
// the help walk of the tests and the shell completion scripts all read this
// table, so none of them can leave a command out.
type command struct {
	name string
	// synopsis is the usage line(s) after "gatehouse "; a group's is made
	// from its subcommands when empty.
	synopsis string
	summary  string
	run      mainFunc
	group    *group // the subcommands, for a group such as devices
}

// commands is the table of top-level commands, in the order the usage
// lists them. It is a function, not a variable: completion reads it, and
// a variable whose value refers to completion would refer to itself.
func commands() []command {
	return []command{
		{name: "serve", run: runServe, summary: "run the server",
			synopsis: "serve [--listen ADDR] [--db PATH|postgres://...] [--config FILE] [--tls-cert FILE --tls-key FILE]\n" +
				"                  [--simulate-backends] [--log-level debug|info|warn|error] [--log-format text|json]"},
		{name: "demo", run: runDemo, synopsis: "demo [--gateways N] [--listen ADDR] [--faults] [--db FILE] [--log-level LEVEL]",
			summary: "a server with simulated backends and gateways, to try gatehouse out"},
		{name: "config", group: configGroup, summary: "check the backend settings"},
		{name: "devices", group: devicesGroup, summary: "gateways: list, approve and follow them (talks to a server)"},
		{name: "allowlist", group: allowlistGroup, summary: "gateways approved by MAC on first contact"},
		{name: "certs", group: certsGroup, summary: "certificates about to expire, and each gateway's renewals"},
		{name: "audit", group: auditGroup, summary: "the hash-chained audit log"},
		{name: "tokens", group: tokensGroup, summary: "API tokens (--db PATH to bootstrap the first)"},
		{name: "users", group: usersGroup, summary: "people who log in to the page"},
		{name: "backup", run: runBackup, synopsis: "backup FILE [--db PATH]",
			summary: "a consistent copy of the SQLite database while the server runs"},
		{name: "migrate", run: runMigrate, synopsis: "migrate [--db DSN]",
			summary: "bring the database's schema up to date and exit (rolling deploys)"},
		{name: "completion", run: runCompletion, synopsis: "completion bash|zsh|fish",
			summary: "print a shell completion script (see 'gatehouse completion --help')"},
		{name: "version", run: runVersion, summary: "print the version"},
		{name: "help", run: runHelpCommand, synopsis: "help [COMMAND [SUBCOMMAND]]", summary: "this text, or a command's help"},
	}
}

// lookup finds a top-level command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func (c command) line() string {
	if c.synopsis != "" || c.group == nil {
		return cmp.Or(c.synopsis, c.name)
	}
	return c.name + " " + strings.Join(c.group.names(), "|") + " ..."
}

// usage is the top-level help, made from the command table.
func usage() string {
	var b strings.Builder
	b.WriteString("gatehouse provisions edge gateways: enroll, approve, provision, deliver credentials.\n\nUsage:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  gatehouse %s\n      %s\n", c.line(), c.summary)
	}
	b.WriteString("\nRun 'gatehouse COMMAND --help' for the flags of a command.\n")
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it with their own streams.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "--version":
		return runVersion(ctx, nil, stdout, stderr, getenv)
	case "-h", "--help", "-help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	c, ok := lookup(args[0])
	if !ok {
		names := make([]string, 0, len(commands()))
		for _, c := range commands() {
			names = append(names, c.name)
		}
		fmt.Fprintf(stderr, "gatehouse: unknown command %q%s\nRun 'gatehouse --help' for the commands.\n", args[0], didYouMean(args[0], names, quoted))
		return 2
	}
	if c.group != nil {
		return dispatch(ctx, c.group, args[1:], deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
	}
	if wantsHelp(args[1:]) {
		// A command's help is asked for, not a mistake: stdout and exit 0,
		// whatever the command's own flag set does with -h.
		c.run(ctx, []string{"-h"}, stdout, stdout, getenv)
		return 0
	}
	return c.run(ctx, args[1:], stdout, stderr, getenv)
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 && !wantsHelp(args) {
		fmt.Fprintf(stderr, "gatehouse: version takes no arguments\n")
		return 2
	}
	if wantsHelp(args) {
		fmt.Fprintln(stdout, "usage: gatehouse version\n\nPrints the version of this binary.")
		return 0
	}
	fmt.Fprintln(stdout, "gatehouse", version)
	return 0
}

// runHelpCommand is "gatehouse help [COMMAND [SUBCOMMAND]]": the same text
// as COMMAND --help.
func runHelpCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || wantsHelp(args) {
		fmt.Fprint(stdout, usage())
		return 0
	}
	if len(args) > 2 {
		fmt.Fprintln(stderr, "gatehouse: usage: gatehouse help [COMMAND [SUBCOMMAND]]")
		return 2
	}
	return run(ctx, append(append([]string(nil), args...), "--help"), stdout, stderr, getenv)
}

// wantsHelp says whether the command line asks for help: -h, -help or
// --help anywhere before a "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// helpArgs is what a subcommand runs with to print its help: -h first, so
// nothing after it is parsed as a value or run, and --from-csv kept when
// the command line had it, since it makes approve a bulk operation with a
// help of its own (see usesCSV).
func helpArgs(args []string) []string {
	if usesCSV(args) {
		return []string{"-h", "--from-csv"}
	}
	return []string{"-h"}
}

// envOr returns the environment value of key, or def when it is unset.
func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// subcommand is one command of a group such as "devices list".
type subcommand func(ctx context.Context, args []string, dio deviceIO) int

// group is a command made of subcommands, such as devices.
type group struct {
	name string
	help string
	cmds []namedSub // in the order the help lists them
}

type namedSub struct {
	name string
	run  subcommand
}

func (g *group) names() []string {
	out := make([]string, len(g.cmds))
	for i, c := range g.cmds {
		out[i] = c.name
	}
	return out
}

func (g *group) find(name string) (subcommand, bool) {
	for _, c := range g.cmds {
		if c.name == name {
			return c.run, true
		}
	}
	return nil, false
}

// dispatch runs the subcommand args[0] of g, or prints its help.
// Exit codes: 0 ok, 1 API or network error, 2 usage error.
func dispatch(ctx context.Context, g *group, args []string, dio deviceIO) int {
	if len(args) == 0 {
		fmt.Fprint(dio.stderr, g.help)
		return 2
	}
	if cmd, ok := g.find(args[0]); ok {
		if wantsHelp(args[1:]) {
			// Help goes to stdout with exit 0 whatever else is on the line.
			cmd(ctx, helpArgs(args[1:]), deviceIO{stdout: dio.stdout, stderr: dio.stdout, getenv: dio.getenv})
			return 0
		}
		return cmd(ctx, args[1:], dio)
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(dio.stdout, g.help)
		return 0
	}
	fmt.Fprintf(dio.stderr, "gatehouse: unknown %s command %q%s\nRun 'gatehouse %s --help' for its commands.\n",
		g.name, args[0], didYouMean(args[0], g.names(), quoted), g.name)
	return 2
}
