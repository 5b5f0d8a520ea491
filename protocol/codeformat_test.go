package protocol

import "testing"

func TestFormatCode(t *testing.T) {
	for in, want := range map[string]string{"557546": "557 546", "": "", "12345": "12345", "1234567": "1234567"} {
		if got := FormatCode(in); got != want {
			t.Errorf("FormatCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{
		"557 546": "557546", "557546": "557546", " 557-546 ": "557546", "55 75 46": "557546",
		"gw-01": "", "": "", "557a546": "",
	} {
		if got := NormalizeCode(in); got != want {
			t.Errorf("NormalizeCode(%q) = %q, want %q", in, got, want)
		}
	}
	if got := NormalizeCode(FormatCode("012345")); got != "012345" {
		t.Errorf("round trip lost digits: %q", got)
	}
}
