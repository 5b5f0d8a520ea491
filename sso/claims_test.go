package sso

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func parseClaims(t *testing.T, s string) claims {
	t.Helper()
	var c claims
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGroupsClaim(t *testing.T) {
	for _, tc := range []struct {
		json      string
		want      []string
		found     bool
		wantError bool
	}{
		{`{}`, nil, false, false},
		{`{"groups": null}`, nil, false, false},
		{`{"groups": []}`, []string{}, true, false},
		{`{"groups": ["a", "b c", ""]}`, []string{"a", "b c"}, true, false},
		{`{"groups": "ops"}`, []string{"ops"}, true, false},
		{`{"groups": {"ops": {"1": "x"}, "admins": {}}}`, []string{"admins", "ops"}, true, false},
		{`{"groups": 7}`, nil, true, true},
		{`{"groups": [1, 2]}`, nil, true, true},
		{`{"groups": true}`, nil, true, true},
	} {
		got, found, err := parseClaims(t, tc.json).groups("groups")
		if (err != nil) != tc.wantError || found != tc.found || (!tc.wantError && !slices.Equal(got, tc.want)) {
			t.Errorf("%s: %q %v %v", tc.json, got, found, err)
		}
	}
	_, _, err := parseClaims(t, `{"roles": 7}`).groups("roles")
	if err == nil || !strings.Contains(err.Error(), `"roles"`) {
		t.Fatalf("error does not name the claim: %v", err)
	}
}

func TestDisplayName(t *testing.T) {
	for js, want := range map[string]string{
		`{"preferred_username": "alice", "email": "a@example.com", "name": "Alice A"}`: "alice",
		`{"preferred_username": " ", "email": "a@example.com", "name": "Alice A"}`:     "a@example.com",
		`{"name": "Alice A"}`:                 "Alice A",
		`{"preferred_username": 5}`:           "",
		`{"email": "a@example.com", "x": {}}`: "a@example.com",
	} {
		if got := parseClaims(t, js).displayName(); got != want {
			t.Errorf("%s: %q, want %q", js, got, want)
		}
	}
}

func TestPrintable(t *testing.T) {
	if got := printable("bad\r\nLocation: x\x00\tok", 100); got != "bad Location: x ok" {
		t.Errorf("control characters: %q", got)
	}
	if got := printable(strings.Repeat("é", 300), 200); len([]rune(got)) != 201 || !strings.HasSuffix(got, "…") {
		t.Errorf("long text: %d runes", len([]rune(got)))
	}
}
