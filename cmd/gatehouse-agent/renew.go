package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"gatehouse/agent"
)

const renewUsage = `Usage: gatehouse-agent renew [--server URL] [--renew-at FRACTION] [flags]

Renews this gateway's certificate (device.crt in --out) before it expires.
Before --renew-at of its lifetime has passed it does nothing and exits 0, so
a daily timer (gatehouse-agent-renew.timer) can run it. When due it asks the
server, signed with the device key, for a fresh certificate, writes it (and
its key when the PKI made one) atomically, confirms it so the server revokes
the old one, and applies the IoT Edge configuration again. Settings come from
the same flags, environment and config file as enrolling; see docs/agent.md.

Flags:
`

const renewExitHelp = `
Exit codes:
  0  renewed, or not due yet (nothing done)
  1  other failure (e.g. a file could not be written)
  2  bad flags or configuration
  3  device key unusable
  4  server refused the renewal (too early for it, key retired by a re-key) or was unreachable
  5  gateway dismissed or decommissioned by an operator
  6  not provisioned yet, or provisioned without a certificate: nothing to renew
  7  certificate renewed, but a restart command failed
`

// runRenew is the renew subcommand.
func runRenew(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg agent.Config
	var o options
	fs := newFlagSet(&cfg, &o, stderr)
	fs.Init("gatehouse-agent renew", fs.ErrorHandling())
	var opts agent.RenewOptions
	fs.Float64Var(&opts.At, "renew-at", agent.DefaultRenewAt, "renew from this `FRACTION` of the certificate's lifetime on (the server refuses before 0.5)")
	fs.Usage = func() {}
	if code, done := parseArgs(fs, args, stdout, stderr); done {
		if code == agent.ExitOK {
			fmt.Fprint(stdout, renewUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			fmt.Fprint(stdout, renewExitHelp)
		}
		return code
	}
	opts.Force = cfg.Force
	if err := applyConfigFile(&cfg, fs, o.configFile); err != nil {
		fmt.Fprintf(stderr, "gatehouse-agent: %s\n", oneLine(err.Error()))
		return agent.ExitCode(err)
	}
	if o.restart.set {
		cfg.RestartCommands = append([]string{}, o.restart.vals...)
	}
	cfg.AgentVersion = version
	cfg.Logger = newLogger(stderr, o.verbose)
	if crashAt != "" {
		cfg.Checkpoint = crashHook(crashAt, stderr)
	}
	if err := applyTestClockOffset(&cfg, stderr); err != nil {
		fmt.Fprintf(stderr, "gatehouse-agent: %s\n", err)
		return agent.ExitCode(err)
	}
	res, err := agent.Renew(ctx, cfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "gatehouse-agent: %s\n", oneLine(err.Error()))
	}
	if res != nil {
		if res.Renewed {
			fmt.Fprintf(stdout, "gatehouse-agent: renewed the certificate of %s (serial %s), valid until %s\n", res.Name, res.Serial, res.NotAfter.UTC().Format(time.RFC3339))
		} else {
			fmt.Fprintf(stdout, "gatehouse-agent: certificate of %s valid until %s, due for renewal at %s: nothing done\n",
				res.Name, res.NotAfter.UTC().Format(time.RFC3339), res.DueAt.UTC().Format(time.RFC3339))
		}
	}
	return agent.ExitCode(err)
}
