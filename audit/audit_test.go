package audit

import (
	"encoding/json"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"
)

// vector is the pair of entries docs/audit.md's recipe was checked on; the
// hashes were computed with that Python recipe, not with this package.
func vector() []Entry {
	return []Entry{{
		Seq: 1, At: time.Date(2025, 3, 14, 8, 26, 53, 589_793_000, time.UTC), Actor: "session:zoë", Source: "192.0.2.1",
		RequestID: "req-1", Action: "device.approve", Target: "x57caa5lsobd", Result: "ok", Detail: `{"name":"gw-01"}`,
		PrevHash: GenesisHash, Hash: "031092dbc8bd74ad53b4d813baab745622dc831458ae85d98287fbbff3b6314b",
	}, {
		Seq: 2, At: time.Date(2025, 3, 14, 8, 27, 0, 0, time.UTC), Actor: "anonymous", Source: "198.51.100.7",
		Action: "login.refused", Target: "POST /api/v1/session", Result: "refused: login with an invalid API token",
		Detail: `{"suppressed":3}`, PrevHash: "031092dbc8bd74ad53b4d813baab745622dc831458ae85d98287fbbff3b6314b",
		Hash: "5f406c6e1016408df697647888bb75625fbdade5e30cf8796711c2c962e1c289",
	}}
}

func TestComputeHashMatchesTheDocumentedRecipe(t *testing.T) {
	for _, e := range vector() {
		if got := ComputeHash(e); got != e.Hash {
			t.Errorf("entry %d: hash %s, want %s", e.Seq, got, e.Hash)
		}
	}
}

// TestEveryFieldIsHashed changes one field at a time; each must change the
// hash, including moving bytes from one field to the next.
func TestEveryFieldIsHashed(t *testing.T) {
	base := vector()[0]
	edits := map[string]func(e *Entry){
		"seq":        func(e *Entry) { e.Seq = 7 },
		"at":         func(e *Entry) { e.At = e.At.Add(time.Microsecond) },
		"actor":      func(e *Entry) { e.Actor = "session:mallory" },
		"source":     func(e *Entry) { e.Source = "192.0.2.2" },
		"request_id": func(e *Entry) { e.RequestID = "req-2" },
		"action":     func(e *Entry) { e.Action = "device.dismiss" },
		"target":     func(e *Entry) { e.Target = "other" },
		"result":     func(e *Entry) { e.Result = "refused: no" },
		"detail":     func(e *Entry) { e.Detail = `{"name":"gw-02"}` },
		"prev_hash":  func(e *Entry) { e.PrevHash = strings.Repeat("1", 64) },
		"boundary":   func(e *Entry) { e.Actor, e.Source = e.Actor+"1", e.Source[1:] },
	}
	for name, edit := range edits {
		e := base
		edit(&e)
		if ComputeHash(e) == base.Hash {
			t.Errorf("changing %s leaves the hash as it was", name)
		}
	}
}

func TestEntryJSONRoundTrip(t *testing.T) {
	e := vector()[0]
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"at":"2025-03-14T08:26:53.589793Z"`) ||
		!strings.Contains(string(b), `"detail":"{\"name\":\"gw-01\"}"`) {
		t.Errorf("encoded as %s", b)
	}
	var back Entry
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if ComputeHash(back) != e.Hash || back.Actor != e.Actor || !back.At.Equal(e.At) {
		t.Errorf("round trip changed the entry: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"seq":1,"at":"2025-03-14T08:26:53.589793Z","extra":1}`), &back); err == nil {
		t.Error("an unknown field was accepted")
	}
	if err := json.Unmarshal([]byte(`{"seq":1,"at":"2025-03-14T08:26:53Z"}`), &back); err == nil {
		t.Error("a time in another layout was accepted")
	}
}

func TestParseHead(t *testing.T) {
	h := Head{Seq: 42, Hash: strings.Repeat("ab", 32)}
	got, err := ParseHead(h.String())
	if err != nil || got != h {
		t.Errorf("ParseHead(%s) = %v, %v", h, got, err)
	}
	if got, err := ParseHead(Head{}.String()); err != nil || got != (Head{}) {
		t.Errorf("the empty head: %v, %v", got, err)
	}
	for _, bad := range []string{"", "42", "x:" + h.Hash, "-1:" + h.Hash, "42:abc", "42:" + strings.ToUpper(h.Hash)} {
		if _, err := ParseHead(bad); err == nil {
			t.Errorf("ParseHead(%q) accepted", bad)
		}
	}
}

// chain makes n linked entries.
func chain(n int) []Entry {
	out := make([]Entry, n)
	prev := GenesisHash
	for i := range out {
		e := Entry{Seq: int64(i + 1), At: time.Unix(1_700_000_000+int64(i), 0).UTC(), Actor: "token:alice",
			Action: "device.approve", Target: "dev", Result: "ok", Detail: "{}", PrevHash: prev}
		e.Hash = ComputeHash(e)
		out[i], prev = e, e.Hash
	}
	return out
}

func entries(es []Entry) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		for _, e := range es {
			if !yield(e, nil) {
				return
			}
		}
	}
}

func TestVerifyIntact(t *testing.T) {
	es := chain(5)
	head, err := Verify(entries(es), Head{})
	if err != nil || head != (Head{Seq: 5, Hash: es[4].Hash}) {
		t.Fatalf("Verify = %v, %v", head, err)
	}
	if _, err := Verify(entries(es), Head{Seq: 3, Hash: es[2].Hash}); err != nil {
		t.Errorf("with an earlier head: %v", err)
	}
	if _, err := Verify(entries(es), head); err != nil {
		t.Errorf("with the same head: %v", err)
	}
	if head, err := Verify(entries(nil), Head{}); err != nil || head != (Head{}) {
		t.Errorf("empty log: %v, %v", head, err)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func([]Entry) []Entry
		expect func([]Entry) Head
		seq    int64
		what   string
	}{
		{"edited", func(es []Entry) []Entry { es[2].Target = "evil"; return es }, nil, 3, "does not match its contents"},
		{"deleted", func(es []Entry) []Entry { return append(es[:2], es[3:]...) }, nil, 3, "missing: entry 2 is followed by entry 4"},
		{"deleted and renumbered", func(es []Entry) []Entry {
			es = append(es[:2], es[3:]...)
			for i := 2; i < len(es); i++ {
				es[i].Seq--
				es[i].Hash = ComputeHash(es[i])
			}
			return es
		}, nil, 3, "does not match the hash of entry 2"},
		{"inserted", func(es []Entry) []Entry {
			forged := Entry{Seq: 3, At: es[1].At, Actor: "token:mallory", Action: "device.approve", Result: "ok",
				Detail: "{}", PrevHash: es[1].Hash}
			forged.Hash = ComputeHash(forged)
			rest := append([]Entry{forged}, es[2:]...)
			for i := 1; i < len(rest); i++ {
				rest[i].Seq++
			}
			return append(es[:2], rest...)
		}, nil, 4, "does not match the hash of entry 3"},
		{"first entry removed", func(es []Entry) []Entry { return es[1:] }, nil, 1, "missing"},
		{"first prev_hash", func(es []Entry) []Entry {
			es[0].PrevHash = strings.Repeat("1", 64)
			es[0].Hash = ComputeHash(es[0])
			return es
		}, nil, 1, "not 64 zeros"},
		{"swapped", func(es []Entry) []Entry { es[1], es[2] = es[2], es[1]; return es }, nil, 2, "missing"},
		{"duplicated", func(es []Entry) []Entry { return append(es[:3], es[2:]...) }, nil, 3, "out of order"},
		{"truncated, head expected", func(es []Entry) []Entry { return es[:3] },
			func(es []Entry) Head { return Head{Seq: 5, Hash: es[4].Hash} }, 4, "removed from the end"},
		{"rewritten up to the head", func(es []Entry) []Entry { return chain(5) },
			func(es []Entry) Head { return Head{Seq: 4, Hash: strings.Repeat("e", 64)} }, 4, "differs from the expected head"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := chain(5)
			expect := Head{}
			if tt.expect != nil {
				expect = tt.expect(es)
			}
			_, err := Verify(entries(tt.tamper(es)), expect)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("Verify = %v, want a *Problem", err)
			}
			if p.Seq != tt.seq || !strings.Contains(p.What, tt.what) {
				t.Errorf("problem at %d: %q; want at %d, containing %q", p.Seq, p.What, tt.seq, tt.what)
			}
		})
	}
}

// TestTruncationNeedsAHead is the limit docs/audit.md states: without a
// remembered head a log cut short verifies, as a shorter log would.
func TestTruncationNeedsAHead(t *testing.T) {
	es := chain(5)
	head, err := Verify(entries(es[:3]), Head{})
	if err != nil || head.Seq != 3 {
		t.Errorf("a truncated log without a head: %v, %v; want it to pass as 3 entries", head, err)
	}
}

func TestVerifyPassesReadErrors(t *testing.T) {
	boom := errors.New("disk on fire")
	seq := func(yield func(Entry, error) bool) {
		if yield(chain(1)[0], nil) {
			yield(Entry{}, boom)
		}
	}
	head, err := Verify(seq, Head{})
	if !errors.Is(err, boom) || head.Seq != 1 {
		t.Errorf("Verify = %v, %v; want the read error after entry 1", head, err)
	}
}
