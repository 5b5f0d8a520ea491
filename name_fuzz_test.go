package gatehouse_test

import (
	"strings"
	"testing"

	"gatehouse"
)

// nameRule is the documented name rule, written without a regular
// expression: 1-63 lower-case letters, digits and '-', starting and ending
// with a letter or digit.
func nameRule(name string) bool {
	if len(name) < 1 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// FuzzValidateName checks that a name is accepted iff it follows the rule,
// that a refusal is invalid, and that its message quotes at most the first
// 80 bytes of the name, so a huge name cannot fill a log line.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"gw-1", "a", "0", "-a", "a-", "GW-1", "gw_1", "gw.1", "gw 1", "", "é", "gw-1\n",
		strings.Repeat("a", 63), strings.Repeat("a", 64), "a--b", "ａ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := gatehouse.ValidateName(name)
		if want := nameRule(name); want != (err == nil) {
			t.Fatalf("ValidateName(%q) = %v, want accepted %v", name, err, want)
		}
		if err == nil {
			return
		}
		if gatehouse.ErrorCode(err) != gatehouse.EINVALID {
			t.Fatalf("refusal %v is not invalid", err)
		}
		if msg := gatehouse.ErrorMessage(err); len(name) > 80 && strings.Contains(msg, name) || len(msg) > 600 {
			t.Fatalf("refusal of a %d-byte name is %d bytes and quotes it whole", len(name), len(msg))
		}
	})
}

// FuzzNormalizeMAC checks the MAC rule every enrollment and allowlist row
// passes: an accepted MAC comes back as six lower-case hex pairs joined by
// ':', the input's own digits in lower case, neither all-zero nor
// broadcast, and normalizing it again changes nothing. A refusal is invalid
// and quotes at most 40 bytes of the input.
func FuzzNormalizeMAC(f *testing.F) {
	for _, s := range []string{"02:00:00:00:00:01", "02:00:00:00:00:AB", "02-00-00-00-00-01", "0200.0000.0001", "00:00:00:00:00:00",
		"FF:FF:FF:FF:FF:FF", "02:00:00:00:00:01:02:03", "2:0:0:0:0:1", " 02:00:00:00:00:01", "02:00:00:00:00:0g", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, mac string) {
		got, err := gatehouse.NormalizeMAC(mac)
		if err != nil {
			if got != "" || gatehouse.ErrorCode(err) != gatehouse.EINVALID {
				t.Fatalf("refusal %v returned %q, or is not invalid", err, got)
			}
			if msg := gatehouse.ErrorMessage(err); len(mac) > 40 && strings.Contains(msg, mac) || len(msg) > 300 {
				t.Fatalf("refusal of a %d-byte MAC quotes it whole", len(mac))
			}
			return
		}
		if !macForm(got) || got == "00:00:00:00:00:00" || got == "ff:ff:ff:ff:ff:ff" {
			t.Fatalf("NormalizeMAC(%q) = %q", mac, got)
		}
		if strings.ReplaceAll(strings.ToLower(mac), "-", ":") != got {
			t.Fatalf("NormalizeMAC(%q) = %q, not the same address", mac, got)
		}
		if again, err := gatehouse.NormalizeMAC(got); err != nil || again != got {
			t.Fatalf("NormalizeMAC is not idempotent on %q: %q, %v", got, again, err)
		}
	})
}

func macForm(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i%3 == 2 {
			if s[i] != ':' {
				return false
			}
		} else if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
