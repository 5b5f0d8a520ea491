// Package roster reads the CSV files operators keep of their gateways: one
// row per gateway with its MAC (or, where allowed, its gatehouse id), the
// name it is to get and optional labels. The allowlist import and bulk
// approval both read it, so one file format serves both.
//
// Columns are key, name and labels, in that order, or in any order under a
// header row naming them (mac or id, name, labels). Labels are key=value
// pairs separated by ';'. Lines starting with '#' are comments.
package roster

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"gatehouse"
)

// Row is one gateway of the file, checked against the name and label
// policy. MAC is normalized; ID is set instead when the row names a device
// by its gatehouse id.
type Row struct {
	Line   int               `json:"line"`
	MAC    string            `json:"mac,omitempty"`
	ID     string            `json:"id,omitempty"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// RowError is what is wrong with one line of the file.
type RowError struct {
	Line int    `json:"line"`
	Msg  string `json:"error"`
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Options says what a file may hold.
type Options struct {
	// AllowID accepts a gatehouse device id where a MAC is expected.
	AllowID bool
	// MaxRows bounds the rows read (default 100,000).
	MaxRows int
}

// DefaultMaxRows is the most rows a file may have unless Options say.
const DefaultMaxRows = 100_000

// Parse reads every row and checks each one, so an operator sees all that
// is wrong with a file at once. It returns the good rows and one error per
// bad line; err is set only when the file cannot be read as CSV at all.
func Parse(r io.Reader, opt Options) ([]Row, []RowError, error) {
	if opt.MaxRows <= 0 {
		opt.MaxRows = DefaultMaxRows
	}
	cr := csv.NewReader(skipBOM(r))
	cr.Comment, cr.FieldsPerRecord, cr.TrimLeadingSpace = '#', -1, true
	p := parser{opt: opt, cols: columns{key: 0, name: 1, labels: 2}, macs: map[string]int{}, names: map[string]int{}, ids: map[string]int{}}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "line %d: not valid CSV: %v", pe.Line, pe.Err)
			}
			return nil, nil, fmt.Errorf("roster: read: %w", err)
		}
		// Only after a good read: FieldPos panics on a record that failed.
		line, _ := cr.FieldPos(0)
		if first && p.header(rec) {
			continue
		}
		if len(p.rows)+len(p.bad) >= opt.MaxRows {
			return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "more than %d rows; split the file", opt.MaxRows)
		}
		p.add(line, rec)
	}
	if len(p.rows)+len(p.bad) == 0 {
		return nil, nil, gatehouse.Errorf(gatehouse.EINVALID, "the file holds no rows")
	}
	return p.rows, p.bad, nil
}

// skipBOM drops the byte-order mark spreadsheets put before "CSV UTF-8"
// exports, which would otherwise hide the header row's first column.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	return br
}

type columns struct{ key, name, labels int }

type parser struct {
	opt              Options
	cols             columns
	macs, names, ids map[string]int // first line of each, to name duplicates
	rows             []Row
	bad              []RowError
}

// header takes a first row that names its columns.
func (p *parser) header(rec []string) bool {
	cols := columns{key: -1, name: -1, labels: -1}
	for i, c := range rec {
		switch strings.ToLower(strings.TrimSpace(c)) {
		case "mac", "id", "mac_or_id", "device":
			cols.key = i
		case "name":
			cols.name = i
		case "labels":
			cols.labels = i
		}
	}
	if cols.key < 0 || cols.name < 0 {
		return false
	}
	p.cols = cols
	return true
}

func (p *parser) add(line int, rec []string) {
	row, err := p.row(line, rec)
	if err != nil {
		p.bad = append(p.bad, RowError{Line: line, Msg: err.Error()})
		return
	}
	if err := p.unique(row); err != nil {
		p.bad = append(p.bad, RowError{Line: line, Msg: err.Error()})
		return
	}
	p.rows = append(p.rows, row)
}

func (p *parser) row(line int, rec []string) (Row, error) {
	row := Row{Line: line, Name: strings.TrimSpace(cell(rec, p.cols.name))}
	key := strings.TrimSpace(cell(rec, p.cols.key))
	if err := p.key(&row, key); err != nil {
		return row, err
	}
	if err := gatehouse.ValidateName(row.Name); err != nil {
		return row, errors.New(gatehouse.ErrorMessage(err))
	}
	labels, err := ParseLabels(cell(rec, p.cols.labels))
	if err != nil {
		return row, err
	}
	row.Labels = labels
	return row, nil
}

func (p *parser) key(row *Row, key string) error {
	if key == "" {
		return errors.New("the MAC is missing")
	}
	mac, err := gatehouse.NormalizeMAC(key)
	switch {
	case err == nil:
		row.MAC = mac
	case p.opt.AllowID && !strings.Contains(key, ":"):
		row.ID = key
	default:
		return errors.New(gatehouse.ErrorMessage(err))
	}
	return nil
}

// unique refuses a second row for one MAC, id or name: which of the two
// the operator meant is theirs to say.
func (p *parser) unique(row Row) error {
	checks := []struct {
		seen map[string]int
		val  string
		what string
	}{{p.macs, row.MAC, "MAC"}, {p.ids, row.ID, "device"}, {p.names, row.Name, "name"}}
	for _, c := range checks {
		if first, ok := c.seen[c.val]; ok && c.val != "" {
			return fmt.Errorf("%s %s is also on line %d", c.what, c.val, first)
		}
	}
	for _, c := range checks {
		if c.val != "" {
			c.seen[c.val] = row.Line
		}
	}
	return nil
}

func cell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

// ParseLabels reads "key=value;key=value" and checks the label policy.
func ParseLabels(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("label %q is not key=value", pair)
		}
		k = strings.TrimSpace(k)
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("label %q is given twice", k)
		}
		out[k] = strings.TrimSpace(v)
	}
	if err := gatehouse.ValidateLabels(out); err != nil {
		return nil, errors.New(gatehouse.ErrorMessage(err))
	}
	return out, nil
}
