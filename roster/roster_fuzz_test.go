package roster

import (
	"encoding/csv"
	"maps"
	"slices"
	"strings"
	"testing"

	"gatehouse"
)

// fuzzMaxRows keeps the row limit within reach of the fuzzer.
const fuzzMaxRows = 40

// FuzzRosterParse feeds arbitrary CSV to the roster parser behind the allowlist
// import and bulk approval. A file it refuses gives neither rows nor row
// errors. A file it reads gives at least one and at most fuzzMaxRows lines,
// in order; every good row has a valid name and labels and exactly one key,
// a normalized MAC or (only when allowed) an id, and no two good rows share
// a MAC, id or name. Written back as CSV, the good rows read again as the
// same rows with no errors.
func FuzzRosterParse(f *testing.F) {
	for _, s := range []string{
		"# site A\nmac,name,labels\n02:00:00:00:00:01,site-a-001,site=a;group=line-3\n 02:00:00:00:00:AB , site-a-002,\n",
		"name,mac\ngw-1,02:00:00:00:00:01\nGW 2,02:00:00:00:00:02\ngw-3,not-a-mac\ngw-4,02:00:00:00:00:01\ngw-1,02:00:00:00:00:05\ngw-6,\n",
		"kqcidbr3regl,gw-1\n02:00:00:00:00:02,gw-2\n",
		"\ufeffname,mac\ngw-1,02:00:00:00:00:01\n",
		"mac,name\n\"02:00:00:00:00:01,gw-1\n",
		"\"a,b\",gw-1,\"k=v; j = w \"\n",
		"labels,name,id\n\"x=1\",gw-9,dev\"ice\n",
		"# only a comment\n",
		"02:00:00:00:00:01,gw-1,a=1;a=2\n02:00:00:00:00:02,gw-2,A=1\n02:00:00:00:00:03,gw-3,a=\"x\"\n",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, data string, allowID bool) {
		opt := Options{AllowID: allowID, MaxRows: fuzzMaxRows}
		rows, bad, err := Parse(strings.NewReader(data), opt)
		if err != nil {
			if rows != nil || bad != nil || gatehouse.ErrorCode(err) != gatehouse.EINVALID {
				t.Fatalf("refused with %v but returned %d rows and %d errors", err, len(rows), len(bad))
			}
			return
		}
		checkRows(t, rows, bad, allowID)
		again, bad2, err := Parse(strings.NewReader(writeBack(t, rows)), opt)
		if err != nil && len(rows) > 0 || len(bad2) != 0 {
			t.Fatalf("good rows written back: %v, %v", err, bad2)
		}
		for i := range again {
			again[i].Line = rows[i].Line // the written file has other line numbers
		}
		if !slices.EqualFunc(rows, again, sameRow) {
			t.Fatalf("good rows written back read as others:\n%+v\n%+v", rows, again)
		}
	})
}

func checkRows(t *testing.T, rows []Row, bad []RowError, allowID bool) {
	t.Helper()
	if n := len(rows) + len(bad); n == 0 || n > fuzzMaxRows {
		t.Fatalf("%d lines read with a limit of %d", n, fuzzMaxRows)
	}
	seen := map[string]bool{}
	for i, r := range rows {
		if i > 0 && r.Line <= rows[i-1].Line || r.Line < 1 {
			t.Fatalf("row lines out of order: %d after %d", r.Line, rows[max(i-1, 0)].Line)
		}
		if gatehouse.ValidateName(r.Name) != nil || gatehouse.ValidateLabels(r.Labels) != nil {
			t.Fatalf("line %d: accepted name %q or labels %v", r.Line, r.Name, r.Labels)
		}
		mac, err := gatehouse.NormalizeMAC(r.MAC)
		switch {
		case (r.MAC == "") == (r.ID == ""):
			t.Fatalf("line %d has MAC %q and id %q", r.Line, r.MAC, r.ID)
		case r.MAC != "" && (err != nil || mac != r.MAC):
			t.Fatalf("line %d: MAC %q is not normalized", r.Line, r.MAC)
		case r.ID != "" && (!allowID || strings.Contains(r.ID, ":") || r.ID != strings.TrimSpace(r.ID)):
			t.Fatalf("line %d: id %q accepted (ids allowed: %t)", r.Line, r.ID, allowID)
		}
		for _, k := range []string{"mac " + r.MAC, "id " + r.ID, "name " + r.Name} {
			if seen[k] && !strings.HasSuffix(k, " ") {
				t.Fatalf("line %d repeats %s", r.Line, k)
			}
			seen[k] = true
		}
	}
	for i, b := range bad {
		if i > 0 && b.Line <= bad[i-1].Line || b.Line < 1 || b.Msg == "" {
			t.Fatalf("row error %+v out of order or empty", b)
		}
	}
}

// writeBack writes rows as a CSV file with a header, the name first so no
// key can start a line the way a comment does.
func writeBack(t *testing.T, rows []Row) string {
	t.Helper()
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write([]string{"name", "mac", "labels"})
	for _, r := range rows {
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
			labels = append(labels, k+"="+r.Labels[k])
		}
		w.Write([]string{r.Name, r.MAC + r.ID, strings.Join(labels, ";")})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func sameRow(a, b Row) bool {
	return a.Line == b.Line && a.MAC == b.MAC && a.ID == b.ID && a.Name == b.Name &&
		len(a.Labels) == len(b.Labels) && maps.Equal(a.Labels, b.Labels)
}
