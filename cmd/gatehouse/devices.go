package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"gatehouse"
	"gatehouse/client"
	"gatehouse/protocol"
)

const devicesHelp = `usage: gatehouse devices COMMAND [ARGS] [FLAGS]

Commands:
  list [--state S] [--search Q] [--limit N] [--offset N] [--watch]
                           list gateways, newest first; --watch shows the list again on every change
  show ID                  one gateway with its provisioning steps and timeline
  approve ID --name NAME [--label K=V] [--wait [--timeout D]]
                           name a pending gateway and start its provisioning (a re-key
                           candidate: approve ID, no name); --wait shows each step as it
                           finishes until the gateway is provisioned or fails
  approve --from-csv FILE  approve every gateway of a CSV file (MAC or id, name, labels) in one bulk operation
  dismiss ID               refuse a pending gateway
  restore ID               move a dismissed gateway back to pending (undo a dismiss)
  set ID [--name N] [--label K=V] [--unlabel K]   rename or relabel an approved gateway
  retry ID                 run a failed step now, or restart a stalled gateway's IoT Hub follow-up
  decommission ID [--dry-run]   remove a gateway from every backend and refuse its key (--dry-run: only list what would go)
  forget ID                forget a dismissed or decommissioned gateway: its next contact enrolls it anew

Flags of every command:
  --server URL     gatehouse server: a URL, or HOST:PORT for http://HOST:PORT (https when the
                   port is 443) (env GATEHOUSE_SERVER, default http://127.0.0.1:8080)
  --token TOKEN    API token (env GATEHOUSE_TOKEN)
  -o json|table    output format (default table)

Run 'gatehouse devices COMMAND --help' for the flags of a command.
`

const defaultServer = "http://127.0.0.1:8080"

// devicesGroup is the operator subcommands, which talk to a server over its
// REST API. Exit codes: 0 ok, 1 API or network error, 2 usage error.
var devicesGroup = &group{name: "devices", help: devicesHelp, cmds: []namedSub{
	{"list", devicesList},
	{"show", devicesShow},
	{"approve", devicesApprove},
	{"dismiss", devicesDismiss},
	{"restore", devicesRestore},
	{"set", devicesSet},
	{"retry", devicesRetry},
	{"decommission", devicesDecommission},
	{"forget", devicesForget},
}}

func runDevices(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return dispatch(ctx, devicesGroup, args, deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
}

func devicesList(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("list [--state S] [--search Q] [--sort KEY] [--limit N] [--offset N] [--watch | --csv]", dio)
	state := cmd.fs.String("state", "", "only gateways in this state: "+stateNames())
	search := cmd.fs.String("search", "", "only gateways whose name, MAC, hostname, fingerprint or verification code (spaces ignored) contains this text")
	sort := cmd.fs.String("sort", "", "order by name, state, last_seen or hub; a leading '-' reverses (default: newest first)")
	csv := cmd.fs.Bool("csv", false, "print every matching gateway as CSV, as the page's export does (--limit and --offset do not apply)")
	limit := cmd.fs.Int("limit", 0, "at most this many gateways (server default 100, at most 1000)")
	offset := cmd.fs.Int("offset", 0, "skip this many gateways, for paging")
	watch := cmd.fs.Bool("watch", false, "keep the list on screen and show it again whenever a gateway changes, until Ctrl-C")
	c, _, err := cmd.start(args, 0, func() error {
		if *state != "" && !gatehouse.State(*state).Valid() {
			return usageErrorf("unknown state %q; want one of %s", *state, stateNames())
		}
		if *limit < 0 || *offset < 0 {
			return usageErrorf("--limit and --offset must not be negative")
		}
		if *csv && *watch {
			return usageErrorf("--csv and --watch do not go together")
		}
		return nil
	})
	if err != nil {
		return cmd.exit(err)
	}
	opts := client.ListOptions{State: gatehouse.State(*state), Search: *search, Sort: *sort, Limit: *limit, Offset: *offset}
	if *csv {
		return cmd.exit(c.ExportDevices(ctx, opts, cmd.stdout))
	}
	if *watch {
		return cmd.exit(watchList(ctx, c, cmd, opts))
	}
	list, err := c.ListDevices(ctx, opts)
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(list, func(w io.Writer) { writeDeviceList(w, list, time.Now()) }))
}

func devicesShow(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("show ID", dio)
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	d, err := c.Device(ctx, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	events, err := c.Events(ctx, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	if events == nil {
		events = []gatehouse.Event{}
	}
	out := struct {
		Device *gatehouse.Device `json:"device"`
		Events []gatehouse.Event `json:"events"`
	}{d, events}
	return cmd.exit(cmd.print(out, func(w io.Writer) { writeDeviceDetail(w, d, events, time.Now()) }))
}

func devicesApprove(ctx context.Context, args []string, dio deviceIO) int {
	if usesCSV(args) {
		return devicesApproveCSV(ctx, args, dio)
	}
	cmd := newDeviceCmd("approve ID --name NAME [--label KEY=VALUE ...] [--wait [--timeout D]]", dio)
	name := cmd.fs.String("name", "", "the gateway's name: 1-63 lower-case letters, digits and '-' (required, except for a re-key candidate, which keeps its gateway's)")
	labels := labelFlag{}
	cmd.fs.Var(labels, "label", "a label KEY=VALUE, repeatable; label 'group' picks the deployment manifest")
	wait := cmd.fs.Bool("wait", false, "show each provisioning step as it finishes, until the gateway is provisioned (exit 0) or fails (exit 1)")
	timeout := cmd.fs.Duration("timeout", defaultWaitTimeout, "with --wait, give up waiting after this long (exit 1); provisioning goes on in the server")
	// Declared here too so that help, completion and did-you-mean know it;
	// a command line with it never gets here (see usesCSV).
	cmd.fs.String("from-csv", "", "approve every gateway of this CSV file in one bulk operation (see 'devices approve --from-csv FILE --help')")
	c, pos, err := cmd.start(args, 1, func() error {
		if *timeout <= 0 {
			return usageErrorf("--timeout must be positive, not %s", *timeout)
		}
		return nil
	})
	if err != nil {
		return cmd.exit(err)
	}
	var changes *client.Changes
	if *wait {
		// Listen before approving, so no change after the approval is missed.
		changes = openChanges(ctx, c)
		if changes != nil {
			defer changes.Close()
		}
	}
	d, err := c.Approve(ctx, pos[0], *name, labels)
	if err != nil {
		return cmd.exit(err)
	}
	approved := func(w io.Writer) {
		if d.ID != pos[0] { // a re-key candidate: the answer is its gateway
			fmt.Fprintf(w, "approved the re-key of %s (%s) with the key of %s (state: %s)\n", clean(d.Name), clean(d.ID), clean(pos[0]), clean(string(d.State)))
			return
		}
		fmt.Fprintf(w, "approved %s as %s (state: %s)\n", clean(d.ID), clean(d.Name), clean(string(d.State)))
	}
	if !*wait {
		return cmd.exit(cmd.print(d, approved))
	}
	// Progress is for people: on stdout with the table, on stderr when
	// stdout carries JSON.
	progress := cmd.stdout
	if cmd.output == "json" {
		progress = cmd.stderr
	}
	approved(progress)
	d, err = waitProvisioned(ctx, c, changes, d, *timeout, progress)
	if d != nil {
		if perr := cmd.print(d, func(io.Writer) {}); perr != nil && err == nil {
			err = perr
		}
	}
	return cmd.exit(err)
}

// labelFlag collects repeated --label KEY=VALUE flags.
type labelFlag map[string]string

func (l labelFlag) String() string { return "" }

func (l labelFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	l[k] = val
	return nil
}

func devicesRetry(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("retry ID", dio)
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	d, err := c.Retry(ctx, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(d, func(w io.Writer) {
		fmt.Fprintf(w, "retrying %s (state: %s)\n", clean(d.ID), clean(string(d.State)))
	}))
}

func devicesDismiss(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("dismiss ID", dio)
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	d, err := c.Dismiss(ctx, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(d, func(w io.Writer) { fmt.Fprintf(w, "dismissed %s\n", clean(d.ID)) }))
}

func devicesRestore(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("restore ID", dio)
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	d, err := c.Restore(ctx, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(d, func(w io.Writer) { fmt.Fprintf(w, "%s is pending again\n", clean(d.ID)) }))
}

func stateNames() string {
	names := make([]string, len(gatehouse.States))
	for i, s := range gatehouse.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// deviceIO is what a devices subcommand gets from the process.
type deviceIO struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// deviceCmd is one devices subcommand being run: its flags, with the global
// ones every subcommand accepts, and how it reports.
type deviceCmd struct {
	deviceIO
	fs                    *flag.FlagSet
	server, token, output string
	arg                   string // what the one positional argument is, for errors
}

func newDeviceCmd(synopsis string, dio deviceIO) *deviceCmd {
	return newAPICmd("devices", synopsis, "device ID", dio)
}

// newAPICmd makes a subcommand of group that talks to a server; arg names
// its positional argument, if it takes one.
func newAPICmd(group, synopsis, arg string, dio deviceIO) *deviceCmd {
	name, _, _ := strings.Cut(synopsis, " ")
	cmd := &deviceCmd{deviceIO: dio, fs: flag.NewFlagSet(group+" "+name, flag.ContinueOnError), arg: arg}
	cmd.fs.SetOutput(dio.stderr)
	cmd.fs.Usage = func() {
		fmt.Fprintf(dio.stderr, "usage: gatehouse %s %s [flags]\n\nFlags:\n", group, synopsis)
		cmd.fs.PrintDefaults()
	}
	server := dio.getenv("GATEHOUSE_SERVER")
	if server == "" {
		server = defaultServer
	}
	cmd.fs.StringVar(&cmd.server, "server", server, "gatehouse server: a URL, or HOST:PORT for http://HOST:PORT (https for port 443) (env GATEHOUSE_SERVER)")
	// The default stays empty so usage never prints a token from the environment.
	cmd.fs.StringVar(&cmd.token, "token", "", "API token (default from env GATEHOUSE_TOKEN)")
	cmd.fs.StringVar(&cmd.output, "o", "table", "output format: table or json")
	return cmd
}

// start parses args, runs the command's own checks, and only then makes the
// client, so a wrong command line is reported before a missing token.
func (cmd *deviceCmd) start(args []string, want int, checks ...func() error) (*client.Client, []string, error) {
	pos, err := cmd.parse(args, want)
	for _, check := range checks {
		if err == nil {
			err = check()
		}
	}
	if err != nil {
		return nil, nil, err
	}
	c, err := cmd.client()
	return c, pos, err
}

// parse reads flags and exactly want positional arguments, in any order.
func (cmd *deviceCmd) parse(args []string, want int) ([]string, error) {
	pos, err := parseInterleaved(cmd.fs, args)
	switch {
	case err != nil:
		return nil, err
	case len(pos) != want && want == 0:
		return nil, usageErrorf("unexpected argument %q", pos[0])
	case len(pos) != want:
		return nil, usageErrorf("want exactly one %s, got %d arguments", cmd.arg, len(pos))
	case cmd.output != "table" && cmd.output != "json":
		return nil, usageErrorf("-o must be table or json, not %q", cmd.output)
	}
	return pos, nil
}

// client returns a client of the chosen server, once the command line is
// known to be right.
func (cmd *deviceCmd) client() (*client.Client, error) {
	if cmd.token == "" {
		cmd.token = cmd.getenv("GATEHOUSE_TOKEN")
	}
	if cmd.token == "" {
		return nil, &usageError{msg: "no API token: pass --token or set GATEHOUSE_TOKEN (create one with 'gatehouse tokens create')", quiet: true}
	}
	base, err := serverURL(cmd.server)
	if err != nil {
		from := "--server"
		if !cmd.serverFlagSet() {
			from = "GATEHOUSE_SERVER"
		}
		return nil, &usageError{msg: fmt.Sprintf("%s %q: %v", from, cmd.server, err), quiet: true}
	}
	c, err := client.New(base, cmd.token, client.WithUserAgent("gatehouse-cli/"+version))
	if err != nil {
		return nil, &usageError{msg: errorText(err), quiet: true}
	}
	return c, nil
}

// parseInterleaved lets flags come before or after positional arguments,
// which flag.FlagSet alone does not: it stops at the first non-flag.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errReported
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil // after "--" nothing is a flag
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// errReported is a usage error the FlagSet has printed, with the usage.
var errReported = errors.New("usage error reported")

// usageError is a mistake on the command line: exit 2.
type usageError struct {
	msg   string
	quiet bool // true: the message says it all, skip the usage text
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exit reports err, if any, and returns the exit code.
func (cmd *deviceCmd) exit(err error) int {
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &uerr):
		fmt.Fprintln(cmd.stderr, "gatehouse:", oneLine(uerr.msg))
		if !uerr.quiet {
			cmd.fs.Usage()
		}
		return 2
	case errors.Is(err, errReported):
		return 2
	}
	fmt.Fprintln(cmd.stderr, "gatehouse:", oneLine(errorText(err)))
	return 1
}

// errorText shows an API error as the server's message, which is written for
// operators, with a hint where the fix is on this side.
func errorText(err error) string {
	var gerr *gatehouse.Error
	if !errors.As(err, &gerr) {
		return err.Error()
	}
	if gerr.Code == gatehouse.EUNAUTHORIZED {
		return gerr.Message + " (check --token or GATEHOUSE_TOKEN)"
	}
	return gerr.Message
}

// print writes v as indented JSON or, by default, with table.
func (cmd *deviceCmd) print(v any, table func(io.Writer)) error {
	if cmd.output == "json" {
		enc := json.NewEncoder(cmd.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	table(cmd.stdout)
	return nil
}

// fingerprintShown is how much of a fingerprint a list row shows: enough to
// tell gateways apart; show prints it whole.
const fingerprintShown = 16

func writeDeviceList(w io.Writer, list *client.DeviceList, now time.Time) {
	if len(list.Devices) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "ID\tSTATE\tNAME\tMAC\tFINGERPRINT\tCODE\tFIRST SEEN\tLAST SEEN\tFLAGS")
		for _, d := range list.Devices {
			fp := d.Fingerprint[:min(len(d.Fingerprint), fingerprintShown)]
			row(tw, d.ID, string(d.State), dash(d.Name), d.MAC, fp, dash(protocol.FormatCode(d.VerificationCode)), ago(d.FirstSeen, now), ago(d.LastSeen, now),
				dash(flags(d)))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "%d of %d devices\n", len(list.Devices), list.Total)
	if c := list.PendingCap; c > 0 && list.PendingTotal*10 >= c*9 {
		fmt.Fprintf(w, "! the pending queue holds %d of at most %d gateways; past it, gateways not seen before are refused: "+
			"approve or dismiss some\n", list.PendingTotal, c)
	}
	if n := flagged(list.Devices); n > 0 {
		fmt.Fprintf(w, "! %d share a MAC or verification code with another pending gateway: one may be an impostor; "+
			"compare the code and fingerprint on the gateway's console before approving (devices show ID)\n", n)
	}
	writeRekeyNote(w, list.Devices)
}

// flags marks a pending device that shares its MAC or code with others, so
// it never reads as an ordinary stranger.
func flags(d *gatehouse.Device) string {
	var fs []string
	if len(d.SameMAC) > 0 {
		fs = append(fs, "!same-mac")
	}
	if len(d.SameCode) > 0 {
		fs = append(fs, "!same-code")
	}
	fs = append(fs, rekeyFlags(d)...)
	return strings.Join(fs, ",")
}

func flagged(ds []*gatehouse.Device) int {
	n := 0
	for _, d := range ds {
		if len(d.SameMAC) > 0 || len(d.SameCode) > 0 {
			n++
		}
	}
	return n
}

// duplicateFields are show's warnings naming the devices a flag is about.
func duplicateFields(d *gatehouse.Device) [][2]string {
	var out [][2]string
	if len(d.SameMAC) > 0 {
		out = append(out, [2]string{"Warning", "same MAC as pending " + strings.Join(d.SameMAC, ", ")})
	}
	if len(d.SameCode) > 0 {
		out = append(out, [2]string{"Warning", "same verification code as pending " + strings.Join(d.SameCode, ", ")})
	}
	return out
}

func writeDeviceDetail(w io.Writer, d *gatehouse.Device, events []gatehouse.Event, now time.Time) {
	tw := newTable(w)
	fields := [][2]string{
		{"ID", d.ID}, {"State", string(d.State)}, {"Name", dash(d.Name)}, {"MAC", d.MAC},
		{"Fingerprint", d.Fingerprint}, {"Key type", d.KeyType}, {"Verification code", protocol.FormatCode(d.VerificationCode)},
		{"Source", dash(d.SourceAddr)}, {"First seen", stamp(d.FirstSeen, now)}, {"Last seen", stamp(d.LastSeen, now)},
	}
	if d.ApprovedBy != "" || d.ApprovedAt != nil {
		fields = append(fields, [2]string{"Approved by", dash(d.ApprovedBy)}, [2]string{"Approved at", stampPtr(d.ApprovedAt, now)})
	}
	if d.Hub != "" {
		fields = append(fields, [2]string{"IoT Hub", d.Hub})
	}
	if len(d.Labels) > 0 {
		fields = append(fields, [2]string{"Labels", formatLabels(d.Labels)})
	}
	if d.Reason != "" {
		fields = append(fields, [2]string{"Reason", d.Reason})
	}
	fields = append(fields, duplicateFields(d)...)
	fields = append(fields, rekeyFields(d)...)
	for _, f := range fields {
		row(tw, f[0]+":", f[1])
	}
	tw.Flush()
	writeSteps(w, d.Steps, now)
	writeDecommissionSteps(w, d.Decommission)
	writeEvents(w, events)
}

func formatLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ", ")
}

func writeSteps(w io.Writer, steps []gatehouse.Step, now time.Time) {
	fmt.Fprintln(w)
	if len(steps) == 0 {
		fmt.Fprintln(w, "No provisioning steps yet.")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "STEP\tSTATE\tATTEMPTS\tSTARTED\tFINISHED\tERROR OR NOTE")
	for _, s := range orderedSteps(steps) {
		row(tw, string(s.Name), stepWord(s), fmt.Sprint(s.Attempts),
			agoPtr(s.StartedAt, now), agoPtr(s.FinishedAt, now), dash(truncateText(s.LastError, 100)))
	}
	tw.Flush()
}

func writeEvents(w io.Writer, events []gatehouse.Event) {
	fmt.Fprintln(w)
	if len(events) == 0 {
		fmt.Fprintln(w, "No events.")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tEVENT\tACTOR\tDETAIL")
	for _, e := range events {
		row(tw, e.At.Format(time.RFC3339), e.Kind, dash(e.Actor), dash(e.Detail))
	}
	tw.Flush()
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one table row. Cells are cleaned: a tab or newline from the
// server would break the columns, and escape codes could rewrite the terminal.
func row(tw io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = clean(c)
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func oneLine(s string) string { return strings.Join(strings.Fields(clean(s)), " ") }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncateText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ago is how long before now t was, in the largest whole unit.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	switch d := now.Sub(t); {
	case d < 10*time.Second: // also a server clock slightly ahead of ours
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

func agoPtr(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return ago(*t, now)
}

// stamp is the exact time with how long ago it was.
func stamp(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339) + " (" + ago(t, now) + ")"
}

func stampPtr(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(*t, now)
}
