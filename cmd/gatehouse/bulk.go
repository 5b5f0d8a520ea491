package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/client"
	"gatehouse/roster"
)

// bulkPoll is how often a running bulk operation's progress is read.
const bulkPoll = 500 * time.Millisecond

// usesCSV reports whether a devices command was asked to work from a file,
// which makes it a bulk operation.
func usesCSV(args []string) bool {
	for _, a := range args {
		if a == "--from-csv" || a == "-from-csv" || strings.HasPrefix(a, "--from-csv=") || strings.HasPrefix(a, "-from-csv=") {
			return true
		}
	}
	return false
}

// devicesApproveCSV approves every gateway a CSV file names (MAC or id,
// name, labels), as one bulk operation on the server, and follows it with
// a progress bar on stderr. A file with a bad row, or a row the server
// refuses, starts nothing. Exit 1 if any gateway failed.
func devicesApproveCSV(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("approve --from-csv FILE", dio)
	file := cmd.fs.String("from-csv", "", "a CSV file of gateways: MAC or id, name, labels (key=value;key=value)")
	every := cmd.fs.Duration("progress-every", 5*time.Second, "when stderr is not a terminal, print progress this often")
	c, _, err := cmd.start(args, 0, func() error {
		if *file == "" {
			return usageErrorf("--from-csv needs a file")
		}
		return nil
	})
	if err != nil {
		return cmd.exit(err)
	}
	rows, err := readRoster(*file, dio.stderr)
	if err != nil {
		return cmd.exit(err)
	}
	req := client.BulkRequest{Action: gatehouse.BulkApprove, Items: make([]client.BulkTarget, len(rows))}
	for i, r := range rows {
		req.Items[i] = client.BulkTarget{ID: r.ID, MAC: r.MAC, Name: r.Name, Labels: r.Labels}
	}
	plan, err := c.PlanBulk(ctx, req)
	if err != nil {
		return cmd.exit(err)
	}
	if len(plan.Problems) > 0 {
		for _, p := range plan.Problems {
			fmt.Fprintf(dio.stderr, "%s:%d: %s\n", *file, rows[p.Item-1].Line, oneLine(p.Error))
		}
		return cmd.exit(fmt.Errorf("%d of %d rows refused; nothing was started", len(plan.Problems), len(rows)))
	}
	op, err := c.StartBulk(ctx, req)
	if err != nil {
		return cmd.exit(err)
	}
	fmt.Fprintf(dio.stderr, "bulk operation %s: approving %d gateways\n", clean(op.ID), op.Total)
	bar := newProgressBar(dio.stderr, isTerminal(dio.stderr), *every, "approving")
	op, err = followBulk(ctx, c, op.ID, bar)
	if err != nil {
		fmt.Fprintf(dio.stderr, "gatehouse: the operation goes on in the server; its progress: GET /api/v1/bulk/%s\n", clean(op.ID))
		return cmd.exit(err)
	}
	if code := cmd.exit(cmd.print(op, func(w io.Writer) { writeBulkSummary(w, *file, rows, op) })); code != 0 {
		return code
	}
	if op.Failed > 0 {
		return 1
	}
	return 0
}

// readRoster parses the file, reporting each bad row as FILE:LINE.
func readRoster(path string, stderr io.Writer) ([]roster.Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("cannot read %s: %v", path, err), quiet: true}
	}
	defer f.Close()
	rows, bad, err := roster.Parse(f, roster.Options{AllowID: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, errorText(err))
	}
	for _, b := range bad {
		fmt.Fprintf(stderr, "%s:%d: %s\n", path, b.Line, oneLine(b.Msg))
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%d bad rows in %s; nothing was started", len(bad), path)
	}
	return rows, nil
}

// followBulk polls the operation until every item has its result.
func followBulk(ctx context.Context, c *client.Client, id string, bar *progressBar) (*gatehouse.BulkOperation, error) {
	tick := time.NewTicker(bulkPoll)
	defer tick.Stop()
	for {
		op, err := c.Bulk(ctx, id)
		if err != nil {
			return &gatehouse.BulkOperation{ID: id}, err
		}
		bar.show(op.Done, op.Failed, op.Total)
		if op.FinishedAt != nil {
			bar.end()
			return op, nil
		}
		select {
		case <-ctx.Done():
			bar.end()
			return op, ctx.Err()
		case <-tick.C:
		}
	}
}

func writeBulkSummary(w io.Writer, file string, rows []roster.Row, op *gatehouse.BulkOperation) {
	fmt.Fprintf(w, "approved %d of %d gateways", op.Done, op.Total)
	if op.Failed == 0 {
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "; %d failed:\n", op.Failed)
	for _, it := range op.Items {
		if it.State != gatehouse.BulkFailed {
			continue
		}
		where := fmt.Sprintf("item %d", it.Seq)
		if it.Seq >= 1 && it.Seq <= len(rows) {
			where = fmt.Sprintf("%s:%d", file, rows[it.Seq-1].Line)
		}
		fmt.Fprintf(w, "  %s %s %s: %s\n", where, clean(it.DeviceID), clean(it.Name), oneLine(clean(it.Result)))
	}
}

// progress draws a bar on a terminal, redrawn in place; elsewhere (a log,
// a CI job) it prints a line now and then instead.
type progressBar struct {
	w     io.Writer
	tty   bool
	every time.Duration
	label string
	now   func() time.Time

	last       time.Time
	shown      string
	drawn      bool
	done, fail int
	total      int
}

func newProgressBar(w io.Writer, tty bool, every time.Duration, label string) *progressBar {
	return &progressBar{w: w, tty: tty, every: every, label: label, now: time.Now}
}

const barWidth = 30

func (p *progressBar) show(done, failed, total int) {
	p.done, p.fail, p.total = done, failed, total
	line := p.line()
	if p.tty {
		if line != p.shown {
			fmt.Fprintf(p.w, "\r%s", line)
			p.shown, p.drawn = line, true
		}
		return
	}
	if now := p.now(); line != p.shown && (p.last.IsZero() || now.Sub(p.last) >= p.every) {
		fmt.Fprintln(p.w, line)
		p.shown, p.last = line, now
	}
}

// end leaves the final state on screen and the cursor on a new line.
func (p *progressBar) end() {
	line := p.line()
	switch {
	case p.tty && p.drawn:
		if line != p.shown {
			fmt.Fprintf(p.w, "\r%s", line)
		}
		fmt.Fprintln(p.w)
	case !p.tty && line != p.shown:
		fmt.Fprintln(p.w, line)
	}
	p.shown = line
}

func (p *progressBar) line() string {
	finished := p.done + p.fail
	filled := 0
	if p.total > 0 {
		filled = finished * barWidth / p.total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled)
	return fmt.Sprintf("%s [%s] %d/%d done, %d failed", p.label, bar, p.done, p.total, p.fail)
}

// isTerminal reports whether w is a terminal, where a bar can redraw.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
