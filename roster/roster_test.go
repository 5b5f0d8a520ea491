package roster

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseGoodFile(t *testing.T) {
	in := "# site A\nmac,name,labels\n02:00:00:00:00:01,site-a-001,site=a;group=line-3\n 02:00:00:00:00:AB , site-a-002,\n"
	rows, bad, err := Parse(strings.NewReader(in), Options{})
	if err != nil || len(bad) != 0 {
		t.Fatalf("Parse = %v, %v", bad, err)
	}
	want := []Row{
		{Line: 3, MAC: "02:00:00:00:00:01", Name: "site-a-001", Labels: map[string]string{"site": "a", "group": "line-3"}},
		{Line: 4, MAC: "02:00:00:00:00:ab", Name: "site-a-002"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %+v, want %+v", rows, want)
	}
}

func TestParseReportsEveryBadLine(t *testing.T) {
	in := strings.Join([]string{
		"name,mac",               // 1: header in another order
		"gw-1,02:00:00:00:00:01", // 2
		"GW 2,02:00:00:00:00:02", // 3: bad name
		"gw-3,not-a-mac",         // 4: bad MAC
		"gw-4,02:00:00:00:00:01", // 5: MAC again
		"gw-1,02:00:00:00:00:05", // 6: name again
		"gw-6,",                  // 7: no MAC
		"gw-7,02:00:00:00:00:07", // 8
	}, "\n")
	rows, bad, err := Parse(strings.NewReader(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, b := range bad {
		lines = append(lines, b.Line)
	}
	if !reflect.DeepEqual(lines, []int{3, 4, 5, 6, 7}) || len(rows) != 2 {
		t.Fatalf("bad lines %v (%v), %d good rows; want lines 3-7 bad and 2 good", lines, bad, len(rows))
	}
	for _, want := range []string{"invalid name", "invalid MAC", "also on line 2", "name gw-1 is also on line 2", "missing"} {
		found := false
		for _, b := range bad {
			found = found || strings.Contains(b.Error(), want)
		}
		if !found {
			t.Errorf("no error says %q: %v", want, bad)
		}
	}
}

func TestParseIDs(t *testing.T) {
	in := "kqcidbr3regl,gw-1\n02:00:00:00:00:02,gw-2\n"
	rows, bad, err := Parse(strings.NewReader(in), Options{AllowID: true})
	if err != nil || len(bad) != 0 || len(rows) != 2 || rows[0].ID != "kqcidbr3regl" || rows[1].MAC == "" {
		t.Fatalf("Parse = %+v, %v, %v", rows, bad, err)
	}
	if _, bad, _ := Parse(strings.NewReader(in), Options{}); len(bad) != 1 || bad[0].Line != 1 {
		t.Errorf("without AllowID, an id must be a bad line 1: %v", bad)
	}
}

func TestParseRefusesWholeFile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":   "# nothing\n",
		"bad csv": "02:00:00:00:00:01,\"gw-1\n",
		// A broken first field once made Parse panic asking where it was.
		"bad first field": "mac,name\n\"02:00:00:00:00:01,gw-1\n",
		"too many":        "02:00:00:00:00:01,gw-1\n02:00:00:00:00:02,gw-2\n02:00:00:00:00:03,gw-3\n",
	} {
		if _, _, err := Parse(strings.NewReader(in), Options{MaxRows: 2}); err == nil {
			t.Errorf("%s: Parse accepted the file", name)
		}
	}
}

// Spreadsheets save "CSV UTF-8" with a byte-order mark before the header.
func TestParseSkipsByteOrderMark(t *testing.T) {
	in := "\ufeffname,mac\ngw-1,02:00:00:00:00:01\n"
	rows, bad, err := Parse(strings.NewReader(in), Options{})
	if err != nil || len(bad) != 0 || len(rows) != 1 || rows[0].MAC != "02:00:00:00:00:01" || rows[0].Line != 2 {
		t.Fatalf("Parse = %+v, %v, %v", rows, bad, err)
	}
}

func TestParseLabels(t *testing.T) {
	for in, ok := range map[string]bool{"": true, "a=1": true, "a=1; b = two": true, "a": false, "a=1;a=2": false, "A=1": false, `a="x"`: false} {
		if _, err := ParseLabels(in); (err == nil) != ok {
			t.Errorf("ParseLabels(%q) err = %v, want ok=%v", in, err, ok)
		}
	}
}
