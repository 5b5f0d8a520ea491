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
	"path/filepath"
	"strings"
	"syscall"

	"gatehouse/agent"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// crashAt is a test hook: the power-cut tests set GATEHOUSE_AGENT_CRASH_AT
// to a checkpoint name and the process dies there as if the power went.
// Only the binary reads it, so library users cannot trip over it.
var crashAt string

const usage = `Usage: gatehouse-agent [--server URL] [flags]

Enrolls this gateway with a gatehouse server using its Mender device key,
waits until an operator approves it, writes its credentials and restarts
the services that use them. Compare the verification code it prints with
the one shown beside the pending gateway before approving.

Settings come from flags, then the environment (GATEHOUSE_SERVER), then the
config file (KEY=VALUE lines, default /etc/gatehouse/agent.conf); see
docs/agent.md. Once device-name exists the agent exits 0 at once.
"gatehouse-agent renew --help" describes the certificate renewal mode.

Flags:
`

const exitHelp = `
Exit codes:
  0  provisioned: credentials written, services restarted (or already provisioned)
  1  other failure (e.g. a file could not be written)
  2  bad flags or configuration (e.g. missing --server, http:// without --insecure-http)
  3  device key unusable: missing (with --wait-for-key=false), unreadable or unsupported
  4  server refused this gateway (or, with --once, was unreachable)
  5  gateway dismissed or decommissioned by an operator
  6  --once and the gateway is not provisioned yet
  7  credentials written, but a restart command failed (the next run retries it)
  8  the server refused this gateway's signatures: its clock is off by more than 5 minutes
`

func main() {
	crashAt = os.Getenv("GATEHOUSE_AGENT_CRASH_AT")
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
	configFile       string
	restart          stringList
}

func newFlagSet(cfg *agent.Config, o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gatehouse-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Server, "server", os.Getenv("GATEHOUSE_SERVER"), "gatehouse server `URL` (env GATEHOUSE_SERVER, config SERVER)")
	fs.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "allow an http:// --server (labs only: answers are not authenticated; config INSECURE_HTTP)")
	fs.StringVar(&cfg.ServerCA, "ca", "", "trust only the CA certificates in PEM `FILE` for the server, instead of the system roots (config SERVER_CA)")
	fs.StringVar(&cfg.ServerPin, "pin", "", "require the server key to match `sha256/BASE64` (SHA-256 of its SubjectPublicKeyInfo;\ncomma-separate several for a rollover; config SERVER_PIN)")
	fs.StringVar(&o.configFile, "config", "", "config file `PATH` (default "+agent.DefaultConfigFile+" when it exists)")
	fs.StringVar(&cfg.KeyPath, "key", "", "Mender device key `PATH`, PEM (default: Security.AuthPrivateKey in --mender-conf,\nelse "+agent.DefaultKeyPath+")")
	fs.StringVar(&cfg.MenderConf, "mender-conf", agent.DefaultMenderConf, "Mender configuration `PATH`, read for the key location")
	fs.BoolVar(&cfg.WaitForKey, "wait-for-key", true, "wait for a missing key (Mender not started yet) instead of exiting 3")
	fs.StringVar(&cfg.OutDir, "out", agent.DefaultOutDir, "`DIR` for the credential files")
	fs.StringVar(&cfg.MAC, "mac", "", "`MAC` address to report")
	fs.StringVar(&cfg.Interface, "interface", "", "`interface` whose MAC to report (default: lowest-index Ethernet interface)")
	fs.StringVar(&cfg.IdentityScript, "identity-script", "", "run Mender's identity script at `PATH` and report its mac=\n(e.g. /usr/share/mender/identity/mender-device-identity)")
	fs.Var(&o.restart, "restart-cmd", "`command` run with sh -c after writing the files; repeatable; '' alone runs none\n(default: restart mender-authd or mender-client, whichever is installed;\niotedge config apply if installed; see MENDER_RESTART, IOTEDGE_RESTART)")
	fs.BoolVar(&cfg.NoRestart, "no-restart", false, "run no restart commands")
	fs.BoolVar(&cfg.Once, "once", false, "enroll and wait one round only; exit 6 if not provisioned yet")
	fs.BoolVar(&cfg.Force, "force", false, "provision again although device-name exists")
	fs.StringVar(&cfg.Root, "root", "", "treat `DIR` as / for every file read or written (for tests)")
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
	if len(args) > 0 && args[0] == "renew" {
		return runRenew(ctx, args[1:], stdout, stderr)
	}
	var cfg agent.Config
	var o options
	fs := newFlagSet(&cfg, &o, stderr)
	if code, done := parseArgs(fs, args, stdout, stderr); done {
		return code
	}
	if o.version {
		fmt.Fprintln(stdout, "gatehouse-agent", version)
		return agent.ExitOK
	}
	if err := applyConfigFile(&cfg, fs, o.configFile); err != nil {
		fmt.Fprintf(stderr, "gatehouse-agent: %s\n", oneLine(err.Error()))
		return agent.ExitCode(err)
	}
	if o.restart.set {
		cfg.RestartCommands = append([]string{}, o.restart.vals...)
	}
	cfg.AgentVersion, cfg.Banner = version, stdout
	cfg.Logger = newLogger(stderr, o.verbose)
	if crashAt != "" {
		cfg.Checkpoint = crashHook(crashAt, stderr)
	}
	if err := applyTestClockOffset(&cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "gatehouse-agent: %s\n", err)
		return agent.ExitCode(err)
	}
	_, err := agent.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse-agent: %s\n", oneLine(err.Error()))
	}
	return agent.ExitCode(err)
}

// parseArgs parses the flags; done says run should return code at once.
func parseArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stdout)
			return agent.ExitOK, true
		}
		fmt.Fprintln(stderr, "run gatehouse-agent --help for usage")
		return agent.ExitConfig, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse-agent: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return agent.ExitConfig, true
	}
	return 0, false
}

// overriddenBy lists, for config keys that have flags, the flags that win
// over them. The three ways of choosing the MAC are one choice: any of the
// flags replaces whichever the file made.
var overriddenBy = map[string][]string{
	"SERVER":          {"server"},
	"INSECURE_HTTP":   {"insecure-http"},
	"SERVER_CA":       {"ca"},
	"SERVER_PIN":      {"pin"},
	"KEY":             {"key"},
	"MENDER_CONF":     {"mender-conf"},
	"WAIT_FOR_KEY":    {"wait-for-key"},
	"OUT_DIR":         {"out"},
	"MAC":             {"mac", "interface", "identity-script"},
	"INTERFACE":       {"mac", "interface", "identity-script"},
	"IDENTITY_SCRIPT": {"mac", "interface", "identity-script"},
}

// applyConfigFile reads the config file, if any, into cfg below the flags
// and the environment.
func applyConfigFile(cfg *agent.Config, fs *flag.FlagSet, path string) error {
	explicit := path != ""
	if !explicit {
		path = agent.DefaultConfigFile
	}
	if cfg.Root != "" {
		path = filepath.Join(cfg.Root, path)
	}
	fc, err := agent.ReadConfigFile(path)
	if err != nil {
		if !explicit && agent.IsNotExist(err) {
			return nil
		}
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if os.Getenv("GATEHOUSE_SERVER") != "" {
		set["server"] = true
	}
	return fc.Apply(cfg, func(key string) bool {
		for _, f := range overriddenBy[key] {
			if set[f] {
				return true
			}
		}
		return false
	})
}

// crashHook simulates a power cut at the named checkpoint: exit at once,
// with no cleanup, as kill -9 would.
func crashHook(at string, stderr io.Writer) func(string) {
	return func(point string) {
		if point == at {
			fmt.Fprintf(stderr, "gatehouse-agent: GATEHOUSE_AGENT_CRASH_AT: simulated power cut at %s\n", point)
			os.Exit(137)
		}
	}
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
