package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"gatehouse/client"
)

const allowlistHelp = `usage: gatehouse allowlist COMMAND [ARGS] [FLAGS]

Gateways listed by MAC before they enroll: the first key to enroll with a
listed MAC is approved under the listed name and labels, and pinned; a later
key for that MAC waits for an operator.

Commands:
  import FILE [--skip-invalid] [--dry-run]   list the gateways of a CSV file (mac,name,labels; - reads stdin)
  list                     the allowlist, with the device each used entry became
  remove MAC               take a MAC off the allowlist and free its name

The file has one gateway a line: MAC, name, and optional labels as
key=value;key=value, in that order or under a header row naming the columns
(mac, name, labels); lines starting with # are comments. Every row is
checked first (MAC, name policy, names taken in gatehouse and in each
backend); a file with a bad row imports nothing unless --skip-invalid, and
each bad row is printed as FILE:LINE: error.

Flags of every command:
  --server URL     gatehouse server: a URL, or HOST:PORT for http://HOST:PORT (https when the
                   port is 443) (env GATEHOUSE_SERVER, default http://127.0.0.1:8080)
  --token TOKEN    API token (env GATEHOUSE_TOKEN)
  -o json|table    output format (default table)
`

var allowlistGroup = &group{name: "allowlist", help: allowlistHelp, cmds: []namedSub{
	{"import", allowlistImport},
	{"list", allowlistList},
	{"remove", allowlistRemove},
}}

func runAllowlist(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return dispatch(ctx, allowlistGroup, args, deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
}

// maxAllowlistFile is a little over what the server accepts, so a file too
// large is refused by the server with its own message.
const maxAllowlistFile = 1<<20 + 1

func allowlistImport(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAPICmd("allowlist", "import FILE [--skip-invalid] [--dry-run]", "CSV file", dio)
	skip := cmd.fs.Bool("skip-invalid", false, "import the good rows of a file that has bad ones")
	dry := cmd.fs.Bool("dry-run", false, "check every row and print what would be imported, changing nothing")
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	file := pos[0]
	data, err := readAllowlistFile(file)
	if err != nil {
		return cmd.exit(err)
	}
	res, err := c.ImportAllowlist(ctx, data, client.ImportOptions{SkipInvalid: *skip, DryRun: *dry})
	var rows *client.RowsError
	if errors.As(err, &rows) {
		if cmd.output == "json" {
			cmd.print(rows.Result, nil)
		} else {
			printRowErrors(cmd.stderr, file, rows.Result)
		}
		return cmd.exit(fmt.Errorf("%s; fix them, or pass --skip-invalid to import the others", rows.Message))
	}
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(res, func(w io.Writer) {
		printRowErrors(cmd.stderr, file, res)
		writeImportSummary(w, res)
	}))
}

func readAllowlistFile(file string) ([]byte, error) {
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, &usageError{msg: err.Error(), quiet: true}
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxAllowlistFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return data, nil
}

// printRowErrors prints each bad row the way compilers do, so editors and
// grep find the line.
func printRowErrors(w io.Writer, file string, res *client.ImportResult) {
	for _, e := range res.Errors {
		fmt.Fprintf(w, "%s:%d: %s\n", file, e.Line, oneLine(e.Msg))
	}
}

func writeImportSummary(w io.Writer, res *client.ImportResult) {
	verb := "imported"
	if res.DryRun {
		verb = "would import"
	}
	fmt.Fprintf(w, "%s %d of %d rows", verb, len(res.Imported), res.Rows)
	if res.Unchanged > 0 {
		fmt.Fprintf(w, "; %d listed already", res.Unchanged)
	}
	if len(res.Errors) > 0 {
		fmt.Fprintf(w, "; %d bad rows skipped", len(res.Errors))
	}
	fmt.Fprintln(w)
}

func allowlistList(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAPICmd("allowlist", "list", "", dio)
	c, _, err := cmd.start(args, 0)
	if err != nil {
		return cmd.exit(err)
	}
	page, err := c.Allowlist(ctx, 0, 5000)
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(page, func(w io.Writer) { writeAllowlist(w, page) }))
}

func writeAllowlist(w io.Writer, page *client.AllowlistPage) {
	if len(page.Entries) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "MAC\tNAME\tLABELS\tUSED BY\tKEY\tIMPORTED BY\tIMPORTED")
		for _, e := range page.Entries {
			fp := e.Fingerprint[:min(len(e.Fingerprint), fingerprintShown)]
			row(tw, e.MAC, e.Name, dash(formatLabels(e.Labels)), dash(e.DeviceID), dash(fp), e.ImportedBy,
				e.ImportedAt.Format("2006-01-02 15:04"))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "%d of %d entries\n", len(page.Entries), page.Total)
}

func allowlistRemove(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAPICmd("allowlist", "remove MAC", "MAC", dio)
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	if err := c.RemoveAllowlistEntry(ctx, pos[0]); err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(cmd.stdout, "removed %s from the allowlist\n", clean(pos[0]))
	return 0
}
