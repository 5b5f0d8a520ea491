// Command gatehouse-agent enrolls a gateway with a gatehouse server, waits
// for an operator to approve it and installs the credentials it receives.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"gatehouse/agent"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Usage: gatehouse-agent --server URL [flags]

Enrolls this gateway with a gatehouse server using its Mender device key,
waits until an operator approves it, writes its credentials into --out and
restarts the services that use them. Compare the verification code it logs
with the one shown beside the pending gateway before approving.

Flags:
`

const exitHelp = `
Exit codes:
  0  provisioned: credentials written, services restarted
  1  other failure
  2  bad flags or configuration (e.g. missing --server)
  3  device key missing, unreadable or unsupported
  4  server refused this gateway (or, with --once, was unreachable)
  5  gateway dismissed or decommissioned by an operator
  6  --once and the gateway is not provisioned yet
  7  credentials written, but a restart command failed
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// stringList is a repeatable flag; set records whether it was given at all,
// since an explicit empty --restart-cmd differs from the defaults.
type stringList struct {
	vals []string
	set  bool
}

func (l *stringList) String() string { return strings.Join(l.vals, ", ") }

func (l *stringList) Set(v string) error {
	l.set = true
	if v != "" {
		l.vals = append(l.vals, v)
	}
	return nil
}

// options are the parsed flags that are not agent.Config fields.
type options struct {
	verbose, version bool
	restart          stringList
}

func newFlagSet(cfg *agent.Config, o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gatehouse-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Server, "server", os.Getenv("GATEHOUSE_SERVER"), "gatehouse server URL (env GATEHOUSE_SERVER)")
	fs.StringVar(&cfg.KeyPath, "key", agent.DefaultKeyPath, "Mender device key (PEM)")
	fs.StringVar(&cfg.OutDir, "out", agent.DefaultOutDir, "directory for the credential files")
	fs.StringVar(&cfg.MAC, "mac", "", "MAC address to report (default: that of --interface)")
	fs.StringVar(&cfg.Interface, "interface", "", "interface whose MAC to report (default: lowest-index Ethernet interface)")
	fs.Var(&o.restart, "restart-cmd", "command run with sh -c after writing the files; repeatable; '' alone runs none\n(default: systemctl try-restart mender-authd mender-client; iotedge config apply if installed)")
	fs.BoolVar(&cfg.NoRestart, "no-restart", false, "run no restart commands")
	fs.BoolVar(&cfg.Once, "once", false, "enroll and wait one round only; exit 6 if not provisioned yet")
	fs.BoolVar(&o.verbose, "verbose", false, "log debug detail")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	// run prints usage itself: full help to stdout on --help, only a hint
	// below the flag package's error message otherwise.
	fs.Usage = func() {}
	return fs
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fmt.Fprint(w, usage)
	fs.PrintDefaults()
	fmt.Fprint(w, exitHelp)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg agent.Config
	var o options
	fs := newFlagSet(&cfg, &o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stdout)
			return agent.ExitOK
		}
		fmt.Fprintln(stderr, "run gatehouse-agent --help for usage")
		return agent.ExitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse-agent: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return agent.ExitConfig
	}
	if o.version {
		fmt.Fprintln(stdout, "gatehouse-agent", version)
		return agent.ExitOK
	}
	if o.restart.set {
		cfg.RestartCommands = append([]string{}, o.restart.vals...)
	}
	cfg.AgentVersion = version
	cfg.Logger = newLogger(stderr, o.verbose)
	_, err := agent.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse-agent: %s\n", oneLine(err.Error()))
	}
	return agent.ExitCode(err)
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// oneLine keeps the final error on one line for journald and scripts.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
