package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"gatehouse/config"
)

const configHelp = `usage: gatehouse config COMMAND [FLAGS]

Commands:
  check [--config FILE] [--online] [-o json|table]
                  load the backend settings, build every configured backend and say which are
                  configured; with --online, also try each one's credentials with one harmless call
`

var configGroup = &group{name: "config", help: configHelp, cmds: []namedSub{{"check", configCheck}}}

func runConfig(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return dispatch(ctx, configGroup, args, deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
}

func configCheck(ctx context.Context, args []string, dio deviceIO) int {
	stdout, stderr, getenv := dio.stdout, dio.stderr, dio.getenv
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: gatehouse config check [--config FILE] [--online] [-o json|table]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	file := fs.String("config", getenv("GATEHOUSE_CONFIG"), "file of KEY=VALUE settings (env GATEHOUSE_CONFIG)")
	online := fs.Bool("online", false, "also try each backend's credentials with one harmless call")
	out := fs.String("o", "table", "output: table or json")
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gatehouse: config check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *out != "table" && *out != "json" {
		fmt.Fprintf(stderr, "gatehouse: -o must be table or json, not %q\n", *out)
		return 2
	}
	cfg, err := loadConfig(getenv, *file)
	var cl *config.Clients
	if err == nil {
		cl, err = cfg.Build()
	}
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse: configuration is invalid:\n"+err.Error())
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	results := append(cl.Check(ctx, *online), cfg.CheckSSO(ctx, *online))
	if *out == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	} else {
		printChecks(stdout, results, *online)
	}
	for _, r := range results {
		if r.Online != "" && r.Online != "ok" {
			return 1
		}
	}
	return 0
}

func printChecks(w io.Writer, results []config.CheckResult, online bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tCONFIGURED\tONLINE CHECK")
	for _, r := range results {
		state, check := "no", "-"
		if r.Enabled {
			state, check = "yes", "not run (use --online)"
			if online {
				check = r.Online
			}
		}
		lines := strings.Split(check, "\n")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Backend, state, lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t\t%s\n", l)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(tw, "\t\t  note: %s\n", n)
		}
	}
	tw.Flush()
}
