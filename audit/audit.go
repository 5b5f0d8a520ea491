// Package audit defines gatehouse's audit log entries, the hash chain that
// links them, and its verification. It has no dependencies on the rest of
// gatehouse, so anyone holding an export can check it with this package or
// with the recipe in docs/audit.md.
//
// # The encoding (version 1)
//
// Every entry's hash is the lower-case hex SHA-256 of:
//
//	"gatehouse-audit-v1\n"
//
// followed by, for each of these ten fields in this order:
//
//	seq, at, actor, source, request_id, action, target, result, detail, prev_hash
//
// the field's length in bytes as a decimal number, ":", the field's bytes
// (UTF-8), and "\n". seq is decimal without leading zeros; at is the time
// in UTC as "2006-01-02T15:04:05.000000Z" (always six fractional digits,
// exactly as an export shows it); detail is the JSON object text exactly as
// stored and exported (a string field, never re-encoded); prev_hash is the
// hash of the entry before, or 64 zeros for the first entry, whose seq is 1.
// Length prefixes make the encoding unambiguous: no choice of field values
// gives two entries the same input.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Magic starts every hash input; a later encoding gets a new version.
const Magic = "gatehouse-audit-v1\n"

// GenesisHash is the prev_hash of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// TimeLayout is how an entry's time is written, in the hash and in JSON.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Entry is one line of the audit log. Every field is covered by Hash.
type Entry struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Source    string    `json:"source"`
	RequestID string    `json:"request_id"`
	Action    string    `json:"action"`
	Target    string    `json:"target"`
	Result    string    `json:"result"`
	// Detail is a JSON object as text. It stays text in exports so that
	// what was hashed is what anyone reads back, byte for byte.
	Detail   string `json:"detail"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// entryJSON is Entry with its time in the fixed layout the hash uses.
type entryJSON struct {
	Seq       int64  `json:"seq"`
	At        string `json:"at"`
	Actor     string `json:"actor"`
	Source    string `json:"source"`
	RequestID string `json:"request_id"`
	Action    string `json:"action"`
	Target    string `json:"target"`
	Result    string `json:"result"`
	Detail    string `json:"detail"`
	PrevHash  string `json:"prev_hash"`
	Hash      string `json:"hash"`
}

// MarshalJSON writes the time as the hash sees it, so an export can be
// checked without knowing how Go formats times.
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(entryJSON{e.Seq, FormatTime(e.At), e.Actor, e.Source, e.RequestID, e.Action,
		e.Target, e.Result, e.Detail, e.PrevHash, e.Hash})
}

// UnmarshalJSON reads what MarshalJSON writes. Unknown fields are refused:
// a field this version does not hash is a field it cannot vouch for.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("audit entry: %w", err)
	}
	at, err := time.Parse(TimeLayout, j.At)
	if err != nil {
		return fmt.Errorf("audit entry %d: time %q is not in the layout %s", j.Seq, j.At, TimeLayout)
	}
	*e = Entry{j.Seq, at, j.Actor, j.Source, j.RequestID, j.Action, j.Target, j.Result, j.Detail, j.PrevHash, j.Hash}
	return nil
}

// FormatTime is t in the entry layout: UTC, microseconds.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ComputeHash is the hash e should carry, given its fields and PrevHash.
func ComputeHash(e Entry) string {
	h := sha256.New()
	h.Write([]byte(Magic))
	for _, f := range [...]string{strconv.FormatInt(e.Seq, 10), FormatTime(e.At), e.Actor, e.Source, e.RequestID,
		e.Action, e.Target, e.Result, e.Detail, e.PrevHash} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Head names the last entry of a chain: remembered outside the server, it
// lets a later verification see that nothing was cut off the end or
// rewritten up to it. The zero Head is the empty log.
type Head struct {
	Seq  int64
	Hash string
}

// String is "SEQ:HASH", the form ParseHead reads.
func (h Head) String() string {
	if h.Seq == 0 {
		return "0:" + GenesisHash
	}
	return strconv.FormatInt(h.Seq, 10) + ":" + h.Hash
}

// ParseHead reads "SEQ:HASH".
func ParseHead(s string) (Head, error) {
	seqText, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq < 0 {
		return Head{}, fmt.Errorf("head %q: want SEQ:HASH, e.g. 42:%s", s, GenesisHash[:8]+"...")
	}
	if !validHash(hash) {
		return Head{}, fmt.Errorf("head %q: the hash must be 64 lower-case hex digits", s)
	}
	if seq == 0 {
		return Head{}, nil
	}
	return Head{Seq: seq, Hash: hash}, nil
}

func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
