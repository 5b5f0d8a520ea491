package server

import (
	"encoding/csv"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// csvColumns are the export's header. Nothing secret is among them: no
// key material, no step output (certificates, DPS ids) and no step errors
// beyond the device's reason, which the page shows as well.
var csvColumns = []string{
	"id", "name", "state", "mac", "hostname", "agent_version", "verification_code", "fingerprint", "key_type",
	"hub", "steps", "labels", "first_seen", "last_seen", "source_addr", "approved_by", "approved_at", "reason",
}

// csvDeadlineEvery is how many rows an export writes before it moves its
// write deadline on: the server's WriteTimeout is sized for long polls,
// and a large fleet's export takes longer than that while it makes
// progress the whole time.
const csvDeadlineEvery = 500

// exportCSV writes every device f matches as CSV, in f's order. An error
// before the first row is answered as usual; one after it has begun can no
// longer change the status, so the connection is cut instead, and the
// download fails rather than look complete with rows missing.
func (s *Server) exportCSV(w http.ResponseWriter, r *http.Request, f provision.ListFilter) error {
	rc := http.NewResponseController(w)
	cw := csv.NewWriter(w)
	rows := 0
	begin := func() {
		if rows > 0 {
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="gatehouse-devices-`+time.Now().UTC().Format("2006-01-02")+`.csv"`)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		cw.Write(csvColumns)
		rows = 1
	}
	err := s.svc.ExportDevices(r.Context(), f, func(d *gatehouse.Device) error {
		begin()
		if rows%csvDeadlineEvery == 0 {
			rc.SetWriteDeadline(time.Now().Add(time.Minute))
		}
		rows++
		return cw.Write(csvRow(d))
	})
	if err != nil && rows > 0 {
		s.Logger.ErrorContext(r.Context(), "device export cut short", "rows", rows-1, "err", err)
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		return err
	}
	begin()
	cw.Flush()
	return cw.Error()
}

func csvRow(d *gatehouse.Device) []string {
	row := []string{
		d.ID, d.Name, string(d.State), d.MAC, d.Hostname, d.AgentVersion, protocol.FormatCode(d.VerificationCode),
		d.Fingerprint, d.KeyType, d.Hub, csvSteps(d.Steps), csvLabels(d.Labels), csvTime(&d.FirstSeen), csvTime(&d.LastSeen),
		d.SourceAddr, d.ApprovedBy, csvTime(d.ApprovedAt), d.Reason,
	}
	for i, v := range row {
		row[i] = csvCell(v)
	}
	return row
}

// csvCell keeps a spreadsheet from running a value as a formula: one that
// begins with = + - @ (or a tab or carriage return, which some read past)
// gets a leading apostrophe, which spreadsheets show as text. Hostnames,
// labels and reasons come from gateways and backends, so any may try.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// csvSteps is each step's state, in the order the device lists them.
func csvSteps(steps []gatehouse.Step) string {
	parts := make([]string, len(steps))
	for i, st := range steps {
		parts[i] = string(st.Name) + " " + string(st.State)
	}
	return strings.Join(parts, "; ")
}

// csvLabels is key=value pairs, sorted by key so exports compare.
func csvLabels(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, "; ")
}

func csvTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
