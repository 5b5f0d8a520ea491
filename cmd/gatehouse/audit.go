package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"

	"gatehouse/audit"
	"gatehouse/store"
)

const auditHelp = `usage: gatehouse audit COMMAND [FLAGS]

Commands:
  export [--out FILE]   write the whole audit log as JSON lines, oldest first
  verify [--db PATH | --file FILE] [--expect-head SEQ:HASH]
                        recompute every hash and check the chain: of the database at PATH,
                        of an export, or by default of the server's log over its REST API

Flags of the commands that talk to a server (export; verify without --db or --file):
  --server URL     gatehouse server: a URL, or HOST:PORT for http://HOST:PORT (https when the
                   port is 443) (env GATEHOUSE_SERVER, default http://127.0.0.1:8080)
  --token TOKEN    an admin API token (env GATEHOUSE_TOKEN)

verify prints "audit log intact: N entries, head SEQ:HASH" and exits 0, or names the first bad
entry and exits 1. Keep the head it prints somewhere the server cannot write and pass it as
--expect-head next time: the chain alone cannot show that entries were cut off its end.
See docs/audit.md.
`

// progressEvery is how often long exports and verifications say how far
// they are.
const progressEvery = 10_000

var auditGroup = &group{name: "audit", help: auditHelp, cmds: []namedSub{
	{"export", auditExport},
	{"verify", auditVerify},
}}

// runAudit exports and verifies the audit log. Exit codes: 0 ok, 1 a
// broken log or an API, network or file error, 2 usage error.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return dispatch(ctx, auditGroup, args, deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
}

// newAuditCmd is a subcommand with the server flags of the devices
// commands, and their parsing and reporting.
func newAuditCmd(synopsis string, dio deviceIO) *deviceCmd {
	cmd := &deviceCmd{deviceIO: dio, fs: flag.NewFlagSet("audit", flag.ContinueOnError), output: "table"}
	cmd.fs.SetOutput(dio.stderr)
	cmd.fs.Usage = func() {
		fmt.Fprintf(dio.stderr, "usage: gatehouse audit %s\n\nFlags:\n", synopsis)
		cmd.fs.PrintDefaults()
	}
	server := dio.getenv("GATEHOUSE_SERVER")
	if server == "" {
		server = defaultServer
	}
	cmd.fs.StringVar(&cmd.server, "server", server, "gatehouse server: a URL, or HOST:PORT for http://HOST:PORT (https for port 443) (env GATEHOUSE_SERVER)")
	// The default stays empty so usage never prints a token from the environment.
	cmd.fs.StringVar(&cmd.token, "token", "", "admin API token (default from env GATEHOUSE_TOKEN)")
	return cmd
}

func auditExport(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAuditCmd("export [--out FILE]", dio)
	out := cmd.fs.String("out", "", "write to FILE (replaced only once the export is complete); default standard output")
	c, _, err := cmd.start(args, 0)
	if err != nil {
		return cmd.exit(err)
	}
	entries := progress(c.AuditEntries(ctx), dio.stderr, "exported", progressEvery)
	var last audit.Entry
	var n int
	err = writeOutput(*out, dio.stdout, func(w io.Writer) error {
		n, last, err = writeJSONLines(w, entries)
		return err
	})
	if err != nil {
		return cmd.exit(err)
	}
	if n == 0 {
		fmt.Fprintln(dio.stderr, "exported 0 entries: the audit log is empty")
		return 0
	}
	fmt.Fprintf(dio.stderr, "exported %d entries, the last %d:%s; 'gatehouse audit verify --file' checks them\n", n, last.Seq, last.Hash)
	return 0
}

// writeJSONLines writes one entry a line and returns how many and the last.
func writeJSONLines(w io.Writer, entries iter.Seq2[audit.Entry, error]) (int, audit.Entry, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var last audit.Entry
	n := 0
	for e, err := range entries {
		if err != nil {
			return n, last, err
		}
		if err := enc.Encode(e); err != nil {
			return n, last, err
		}
		n, last = n+1, e
	}
	return n, last, bw.Flush()
}

// writeOutput runs write on standard output, or on a temporary file renamed
// to path once write succeeds, so a failed export never leaves a file that
// looks complete.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" {
		return write(stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, there is nothing left to remove
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func auditVerify(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAuditCmd("verify [--db PATH | --file FILE] [--expect-head SEQ:HASH]", dio)
	dbPath := cmd.fs.String("db", "", "verify the SQLite database at PATH directly")
	file := cmd.fs.String("file", "", "verify an export (JSON lines, as 'gatehouse audit export' writes)")
	expectText := cmd.fs.String("expect-head", "", "fail unless the log still holds this head from an earlier run")
	var expect audit.Head
	if _, err := cmd.parse(args, 0); err != nil {
		return cmd.exit(err)
	}
	if *dbPath != "" && *file != "" {
		return cmd.exit(usageErrorf("give --db or --file, not both"))
	}
	if *expectText != "" {
		var err error
		if expect, err = audit.ParseHead(*expectText); err != nil {
			return cmd.exit(usageErrorf("--expect-head: %v", err))
		}
	}
	entries, closeSource, err := auditSource(ctx, cmd, *dbPath, *file)
	if err != nil {
		return cmd.exit(err)
	}
	defer closeSource()
	head, err := audit.Verify(progress(entries, dio.stderr, "checked", progressEvery), expect)
	var problem *audit.Problem
	if errors.As(err, &problem) {
		fmt.Fprintf(dio.stderr, "gatehouse: audit log broken at entry %d: %s\n", problem.Seq, problem.What)
		return 1
	}
	if err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(dio.stdout, "audit log intact: %d entries, head %s\n", head.Seq, head)
	return 0
}

// auditSource opens what verify reads: a database, an export or the API.
func auditSource(ctx context.Context, cmd *deviceCmd, dbPath, file string) (iter.Seq2[audit.Entry, error], func(), error) {
	switch {
	case dbPath != "":
		// Open would make an empty database where there is none, which
		// would then verify as an intact empty log.
		if _, err := os.Stat(dbPath); err != nil {
			return nil, nil, fmt.Errorf("--db: %w", err)
		}
		db, err := store.Open(ctx, dbPath)
		if err != nil {
			return nil, nil, err
		}
		return db.AuditEntries(ctx), func() { db.Close() }, nil
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, err
		}
		return jsonLines(f), func() { f.Close() }, nil
	}
	c, err := cmd.client()
	if err != nil {
		return nil, nil, err
	}
	return c.AuditEntries(ctx), func() {}, nil
}

// maxLine bounds one exported entry; entries hold at most a few KiB.
const maxLine = 1 << 20

// jsonLines reads an export, skipping blank lines.
func jsonLines(r io.Reader) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		line := 0
		for sc.Scan() {
			line++
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var e audit.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				yield(audit.Entry{}, fmt.Errorf("line %d: %w", line, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(audit.Entry{}, fmt.Errorf("line %d: %w", line+1, err))
		}
	}
}

// progress passes entries through, saying on w every so many how far it is.
func progress(entries iter.Seq2[audit.Entry, error], w io.Writer, verb string, every int) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		n := 0
		for e, err := range entries {
			if err == nil {
				if n++; n%every == 0 {
					fmt.Fprintf(w, "%s %d entries...\n", verb, n)
				}
			}
			if !yield(e, err) {
				return
			}
		}
	}
}
