package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
)

// minSecretLen is the shortest secret worth scanning for: anything shorter
// would match by chance, and no secret of gatehouse's is that short.
const minSecretLen = 12

// secretSet is every secret a flow handled, by name, for scanning logs,
// answers and files for them. Values are never printed, only names.
type secretSet struct {
	mu      sync.Mutex
	entries []secretEntry
	seen    map[string]bool
}

type secretEntry struct {
	name  string
	value []byte
	// form says which form of the secret value is, e.g. "decoded", when
	// one secret is recorded in several.
	form string
	// inDB is a secret the database holds in clear by design, so only the
	// other places are scanned for it.
	inDB bool
}

// add records a secret; values too short to scan for, and values already
// recorded under another name, are left out.
func (s *secretSet) add(name string, value []byte) {
	s.addEntry(secretEntry{name: name, value: value})
}

func (s *secretSet) addString(name, value string) { s.add(name, []byte(value)) }

func (s *secretSet) addEntry(e secretEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(e.value) < minSecretLen || s.seen[string(e.value)] {
		return
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[string(e.value)] = true
	s.entries = append(s.entries, e)
}

// names lists the recorded secrets, to show what a scan covered.
func (s *secretSet) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.entries {
		if e.form == "" {
			out = append(out, e.name)
		}
	}
	return out
}

// needle is one encoding of one secret.
type needle struct {
	secret, form string
	b            []byte
}

// needles are the encodings of every secret keep says to look for.
func (s *secretSet) needles(keep func(secretEntry) bool) []needle {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []needle
	for _, e := range s.entries {
		if !keep(e) {
			continue
		}
		for _, n := range encodings(e.name, e.value) {
			if e.form != "" {
				n.form = e.form + ", " + n.form
			}
			out = append(out, n)
		}
	}
	return out
}

func everySecret(secretEntry) bool { return true }

// notInDBByDesign leaves out the secrets the database stores on purpose.
func notInDBByDesign(e secretEntry) bool { return !e.inDB }

// encodings are the forms a secret could be written in: as is, hex, URL
// escaped, and standard and URL base64 with or without padding. Base64 is
// matched at each of the three alignments it could have inside a longer
// encoded blob (a JSON document, a bundle), and line by line as PEM
// splits it. A long secret is also matched by either half as is, as when
// a message holding it was cut short.
func encodings(name string, v []byte) []needle {
	var out []needle
	seen := map[string]bool{}
	add := func(form string, b []byte) {
		if len(b) >= minSecretLen && !seen[string(b)] {
			seen[string(b)] = true
			out = append(out, needle{name, form, b})
		}
	}
	add("raw", v)
	if len(v) >= 2*minSecretLen {
		add("first half", v[:len(v)/2])
		add("second half", v[len(v)/2:])
	}
	add("hex", []byte(hex.EncodeToString(v)))
	add("upper-case hex", []byte(strings.ToUpper(hex.EncodeToString(v))))
	add("URL-escaped", []byte(url.QueryEscape(string(v))))
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.StdEncoding}, {"URL base64", base64.URLEncoding}} {
		for k := range 3 {
			add(fmt.Sprintf("%s at alignment %d", enc.name, k), base64Inner(enc.e, v, k))
		}
	}
	pem := base64.StdEncoding.EncodeToString(v)
	for i := 0; i+64 <= len(pem); i += 64 {
		add(fmt.Sprintf("PEM line %d", i/64+1), []byte(pem[i:i+64]))
	}
	return out
}

// base64Inner is the part of the base64 encoding of v, preceded by k other
// bytes, that does not depend on those bytes or on what follows v: whole
// 4-character groups only, so it matches padded, unpadded and embedded v.
func base64Inner(e *base64.Encoding, v []byte, k int) []byte {
	s := e.EncodeToString(append(make([]byte, k), v...))
	start := 0
	if k > 0 {
		start = 4
	}
	end := len(s) - 4
	if end <= start {
		return nil
	}
	return []byte(s[start:end])
}

// scanLines reports every needle found in the lines of data, by secret
// name, form and line number.
func scanLines(where string, data []byte, ns []needle) []string {
	return scanData(where, data, ns, func(off int) string {
		return fmt.Sprintf("line %d", bytes.Count(data[:off], []byte("\n"))+1)
	})
}

// scanBytes reports every needle found in raw bytes, by offset.
func scanBytes(where string, data []byte, ns []needle) []string {
	return scanData(where, data, ns, func(off int) string { return fmt.Sprintf("offset %d", off) })
}

// scanFile scans a file's raw bytes. A missing file holds nothing.
func scanFile(path, where string, ns []needle) ([]string, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return scanBytes(where, data, ns), nil
}

// scanData reports each secret once per place: in the first of its forms
// found there.
func scanData(where string, data []byte, ns []needle, at func(int) string) []string {
	var out []string
	reported := map[string]bool{}
	for _, n := range ns {
		if reported[n.secret] {
			continue
		}
		if off := bytes.Index(data, n.b); off >= 0 {
			reported[n.secret] = true
			out = append(out, fmt.Sprintf("%s (%s) in %s at %s", n.secret, n.form, where, at(off)))
		}
	}
	return out
}

// TestScannerFindsEveryEncoding proves the scan is not blind: a secret
// planted in each form it may take is found, with where, and nothing is
// found where it is absent.
func TestScannerFindsEveryEncoding(t *testing.T) {
	secret := []byte("\x01\x02s3cr3t-value-\xfe\xff-of-some-length-for-pem-lines-0123456789")
	var set secretSet
	set.add("planted", secret)
	set.addString("too short", "short")
	set.addString("duplicate", string(secret))
	if got := set.names(); len(got) != 1 || got[0] != "planted" {
		t.Fatalf("recorded %v, want only the planted secret", got)
	}
	ns := set.needles(everySecret)
	pem := base64.StdEncoding.EncodeToString(secret)
	plants := map[string]string{
		"raw":            "x=" + string(secret) + "\n",
		"hex":            "k=" + hex.EncodeToString(secret),
		"HEX":            "k=" + strings.ToUpper(hex.EncodeToString(secret)),
		"url-escaped":    "u=" + url.QueryEscape(string(secret)),
		"base64":         base64.StdEncoding.EncodeToString(secret),
		"raw base64url":  base64.RawURLEncoding.EncodeToString(secret),
		"embedded at +1": base64.StdEncoding.EncodeToString(append([]byte("a"), secret...)),
		"embedded at +2": base64.RawURLEncoding.EncodeToString(append([]byte("ab"), append(secret, "tail"...)...)),
		"PEM":            "-----BEGIN X-----\\n" + pem[:64] + "\\n" + pem[64:] + "\\n-----END X-----",
		"cut short":      "msg=\"refused: " + string(secret[:len(secret)*2/3]) + "...\"",
	}
	for form, hay := range plants {
		data := []byte("first line\nsecond line " + hay + " end\n")
		found := scanLines("log", data, ns)
		if len(found) == 0 {
			t.Errorf("%s: not found", form)
		}
		for _, f := range found {
			if !strings.HasPrefix(f, "planted (") || !strings.HasSuffix(f, " in log at line 2") {
				t.Errorf("%s: reported as %q", form, f)
			}
			if strings.Contains(f, string(secret)) || strings.Contains(f, pem[:20]) {
				t.Errorf("%s: the report shows the secret", form)
			}
		}
	}
	clean := []byte("nothing to see\n" + base64.StdEncoding.EncodeToString([]byte("other data of similar length, 0123456789")))
	if found := scanLines("log", clean, ns); len(found) != 0 {
		t.Errorf("found in clean data: %v", found)
	}
}
