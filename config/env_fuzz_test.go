package config

import (
	"bufio"
	"bytes"
	"maps"
	"strings"
	"testing"
)

// FuzzParseEnvFile feeds arbitrary config files to the KEY=VALUE parser.
// A file it accepts gives keys that are trimmed, non-empty and free of '='
// and line breaks; written back (each line `export KEY="VALUE"`) it parses
// to the same settings. A file it refuses gives no settings at all, and the
// error, which may be logged, repeats no line of the file: the file holds
// secrets.
func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{
		"GATEHOUSE_LISTEN=:8080\n# a comment\n\nexport VAULT_TOKEN=\"s.abcdefgh\"\n",
		"A='single quoted'\nB=\"double\"\nC=\"unbalanced\nD==x\n E = spaced \r\n",
		"export =x\n",
		"NO_EQUALS_SIGN_HERE_AT_ALL\n",
		"K=\"\"\nL='\nM=\"a\"b\"\n",
		"export export K=v\n",
		"\ufeffK=v\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseEnvFile(bufio.NewScanner(bytes.NewReader(data)))
		if err != nil {
			if got != nil {
				t.Fatalf("refused with %v but returned %d settings", err, len(got))
			}
			checkEnvError(t, err, data)
			return
		}
		var back strings.Builder
		for k, v := range got {
			if k == "" || k != strings.TrimSpace(k) || strings.ContainsAny(k, "=\n") {
				t.Fatalf("accepted key %q", k)
			}
			back.WriteString("export " + k + "=\"" + v + "\"\n")
		}
		again, err := parseEnvFile(bufio.NewScanner(strings.NewReader(back.String())))
		if err != nil || !maps.Equal(again, got) {
			t.Fatalf("settings written back parse otherwise (%v): %q, %q", err, got, again)
		}
	})
}

func checkEnvError(t *testing.T, err error, data []byte) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 200 {
		t.Fatalf("a %d-byte error", len(msg))
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); len(line) >= 8 && strings.Contains(msg, line) {
			t.Fatalf("error %q repeats a line of the file", msg)
		}
	}
}
