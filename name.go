package gatehouse

import (
	"net"
	"regexp"
	"strings"
)

// namePattern fits every backend at once: Mender tag values, DPS registration
// ids, IoT Hub device ids and certificate common names. Lower case only, so a
// name cannot collide with itself in a case-insensitive backend.
var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// MaxNameLen is the longest name namePattern accepts.
const MaxNameLen = 63

// ValidateName checks a gateway name against the one policy for all backends.
func ValidateName(name string) error {
	if name == "" {
		return Errorf(EINVALID, "name is required")
	}
	// Too long gets its own message: "use 1-63 characters" reads like a
	// complaint about the characters when the name is merely long.
	if n := len([]rune(name)); n > MaxNameLen {
		return Errorf(EINVALID, "name %q is %d characters long; names are at most %d, to fit every backend", truncate(name, 80), n, MaxNameLen)
	}
	if !namePattern.MatchString(name) {
		return Errorf(EINVALID, "invalid name %q: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit", truncate(name, 80))
	}
	return nil
}

// NormalizeMAC validates a 48-bit Ethernet MAC and returns it in lower-case
// colon form, the form Mender's identity script prints.
func NormalizeMAC(mac string) (string, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 || !strings.Contains(mac, ":") {
		return "", Errorf(EINVALID, "invalid MAC %q: want six hex pairs separated by ':'", truncate(mac, 40))
	}
	if hw.String() == "00:00:00:00:00:00" || hw.String() == "ff:ff:ff:ff:ff:ff" {
		return "", Errorf(EINVALID, "invalid MAC %q: not a device address", hw.String())
	}
	return hw.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

var (
	labelKey   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)
	labelValue = regexp.MustCompile(`^[A-Za-z0-9 ._:/@+-]{0,128}$`)
)

// MaxLabels bounds how many labels one gateway carries.
const MaxLabels = 20

// ValidateLabels checks operator-set labels. Their characters exclude
// quotes and backslashes, so they are safe inside manifest JSON strings.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return Errorf(EINVALID, "at most %d labels, not %d", MaxLabels, len(labels))
	}
	for k, v := range labels {
		if !labelKey.MatchString(k) {
			return Errorf(EINVALID, "invalid label key %q: use 1-63 lower-case letters, digits, '.', '_' and '-'", truncate(k, 80))
		}
		if !labelValue.MatchString(v) {
			return Errorf(EINVALID, "invalid value for label %q: up to 128 letters, digits, spaces and . _ : / @ + -", k)
		}
	}
	return nil
}
