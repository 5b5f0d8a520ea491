// Command gatehouse is the gatehouse server, its demo, and the operator CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// stdin is where commands read passwords from; tests replace it.
var stdin io.Reader = os.Stdin

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `gatehouse provisions edge gateways: enroll, approve, provision, deliver credentials.

Usage:
  gatehouse serve [--listen ADDR] [--db PATH|postgres://...] [--config FILE] [--tls-cert FILE --tls-key FILE] [--simulate-backends]
                 [--log-level debug|info|warn|error] [--log-format text|json]
  gatehouse config check [--config FILE] [--online]
  gatehouse demo [--gateways N] [--listen ADDR] [--log-level LEVEL]
  gatehouse audit export|verify ...   (the hash-chained audit log; see 'gatehouse audit')
  gatehouse devices list|show|approve|dismiss ...   (talks to a server; see 'gatehouse devices')
  gatehouse allowlist import|list|remove ...   gateways approved by MAC on first contact (see 'gatehouse allowlist')
  gatehouse certs expiring|list ...   certificates about to expire, and each gateway's renewals
  gatehouse tokens list|create|revoke ...   API tokens (see 'gatehouse tokens'; --db PATH to bootstrap)
  gatehouse users list|create|set|delete ...  people who log in to the page (see 'gatehouse users')
  gatehouse backup FILE [--db PATH]   a consistent copy of the SQLite database while the server runs
  gatehouse migrate [--db DSN]   bring the database's schema up to date and exit (rolling deploys)
  gatehouse version

Run 'gatehouse COMMAND --help' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it with their own streams.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr, getenv)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr, getenv)
	case "devices":
		return runDevices(ctx, args[1:], stdout, stderr, getenv)
	case "allowlist":
		return runAllowlist(ctx, args[1:], stdout, stderr, getenv)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr, getenv)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr, getenv)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr, getenv)
	case "certs":
		return runCerts(ctx, args[1:], stdout, stderr, getenv)
	case "config":
		return runConfig(ctx, args[1:], stdout, stderr, getenv)
	case "tokens":
		return runTokens(ctx, args[1:], stdout, stderr, getenv)
	case "users":
		return runUsers(ctx, args[1:], stdout, stderr, getenv)
	case "version", "--version":
		fmt.Fprintln(stdout, "gatehouse", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", args[0], usage)
	return 2
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

// dispatch runs the subcommand args[0] of group, or prints its help.
// Exit codes: 0 ok, 1 API or network error, 2 usage error.
func dispatch(ctx context.Context, group, help string, cmds map[string]subcommand, args []string, dio deviceIO) int {
	if len(args) == 0 {
		fmt.Fprint(dio.stderr, help)
		return 2
	}
	if cmd, ok := cmds[args[0]]; ok {
		return cmd(ctx, args[1:], dio)
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(dio.stdout, help)
		return 0
	}
	fmt.Fprintf(dio.stderr, "gatehouse: unknown %s command %q\n\n%s", group, args[0], help)
	return 2
}
