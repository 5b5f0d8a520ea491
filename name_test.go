package gatehouse_test

import (
	"strings"
	"testing"

	"gatehouse"
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "gw-01", "0", strings.Repeat("a", 63), "a-b-c"}
	bad := []string{"", "-a", "a-", "GW", "gw_01", "gw.01", strings.Repeat("a", 64), "gw 01", "ü"}
	for _, n := range good {
		if err := gatehouse.ValidateName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := gatehouse.ValidateName(n); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("%q accepted (%v)", n, err)
		}
	}
}

// TestValidateNameTooLong: a long name is refused as long, with its length,
// not cut and not called invalid for its characters.
func TestValidateNameTooLong(t *testing.T) {
	name := strings.Repeat("gw", 35) // 70 characters, each of them allowed
	err := gatehouse.ValidateName(name)
	if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
		t.Fatalf("70-character name: %v, want %s", err, gatehouse.EINVALID)
	}
	msg := gatehouse.ErrorMessage(err)
	if !strings.Contains(msg, "70 characters long") || !strings.Contains(msg, "at most 63") || !strings.Contains(msg, name) {
		t.Errorf("message = %q, want the name, its length and the limit", msg)
	}
}

func TestNormalizeMAC(t *testing.T) {
	if got, err := gatehouse.NormalizeMAC("02:AB:cd:00:11:22"); err != nil || got != "02:ab:cd:00:11:22" {
		t.Errorf("got %q, %v", got, err)
	}
	for _, m := range []string{"", "02ab.cd00.1122", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "02:ab:cd:00:11", "02:ab:cd:00:11:22:33:44"} {
		if _, err := gatehouse.NormalizeMAC(m); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("%q accepted (%v)", m, err)
		}
	}
}

func TestValidateLabels(t *testing.T) {
	if err := gatehouse.ValidateLabels(map[string]string{"group": "line-3", "site": "Plant A/2", "k": ""}); err != nil {
		t.Errorf("good labels refused: %v", err)
	}
	for _, l := range []map[string]string{
		{"Group": "x"}, {"": "x"}, {"g": `a"b`}, {"g": `a\\b`}, {"g": strings.Repeat("x", 129)}, {"g": "line\n"},
	} {
		if err := gatehouse.ValidateLabels(l); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Errorf("%q accepted (%v)", l, err)
		}
	}
	many := map[string]string{}
	for i := range gatehouse.MaxLabels + 1 {
		many[string(rune('a'+i))] = "x"
	}
	if err := gatehouse.ValidateLabels(many); err == nil {
		t.Error("too many labels accepted")
	}
}
