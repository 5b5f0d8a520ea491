package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
)

// FuzzDecodeEnroll feeds arbitrary bodies to the decoding of the device
// enrollment request. A body it accepts is exactly one valid JSON value,
// decodes as encoding/json alone decodes it, and the request re-encodes and
// decodes again to itself; what it holds is at most three times the body. A body
// it refuses is invalid with a message that names the problem without
// repeating any value of the body (a seal key, a CSR).
func FuzzDecodeEnroll(f *testing.F) {
	for _, s := range []string{
		`{"mac":"02:00:00:00:00:01","seal_key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","hostname":"gw","agent_version":"1.0.0","csr":"-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"}`,
		`{"mac":"02:00:00:00:00:01","seal_key":"AAEC"}`,
		`{"mac":"02:00:00:00:00:01","seal_key":"not base64!"}`,
		`{"mac":"02:00:00:00:00:01","seal_key":"AAEC","admin":true}`,
		`{"mac":7}`,
		`{"mac":"a"} {"mac":"b"}`,
		`{"MAC":"02:00:00:00:00:01"}`,
		`{"mac":"a","mac":"b"}`,
		`null`,
		`[]`,
		``,
		` {"mac":"\u0000"}` + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > MaxBodyBytes {
			return // readBody refuses it before decoding
		}
		var req protocol.EnrollRequest
		err := decodeJSON(body, &req)
		if err != nil {
			checkDecodeRefusal(t, err, body)
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body that is not one JSON value: %q", body)
		}
		var plain protocol.EnrollRequest
		if err := json.Unmarshal(body, &plain); err != nil || !reflect.DeepEqual(plain, req) {
			t.Fatalf("decoded otherwise than encoding/json (%v): %+v, %+v", err, req, plain)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var round protocol.EnrollRequest
		if err := decodeJSON(again, &round); err != nil || !reflect.DeepEqual(round, req) {
			t.Fatalf("a decoded request does not round-trip (%v): %+v, %+v", err, req, round)
		}
		// encoding/json turns each byte of invalid UTF-8 into U+FFFD, three
		// bytes; nothing else decodes to more than it was sent as.
		if n := len(req.MAC) + len(req.SealKey) + len(req.Hostname) + len(req.AgentVersion) + len(req.CSR); n > 3*len(body) {
			t.Fatalf("%d bytes decoded from a %d-byte body", n, len(body))
		}
	})
}

func checkDecodeRefusal(t *testing.T, err error, body []byte) {
	t.Helper()
	var gerr *gatehouse.Error
	if !errors.As(err, &gerr) || gerr.Code != gatehouse.EINVALID || !strings.HasPrefix(gerr.Message, "invalid JSON body: ") {
		t.Fatalf("refusal %v is not an invalid JSON body", err)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	if dec.Decode(&doc) != nil {
		return
	}
	names := map[string]bool{}
	var values []string
	walkJSON(doc, names, &values)
	var allNames strings.Builder
	for n := range names {
		allNames.WriteString(n + "\x00")
	}
	for _, v := range values {
		// A field's name may be quoted (unknown field "x"), so a value
		// that is part of a name proves nothing.
		if len(v) >= 8 && !strings.Contains(allNames.String(), v) && strings.Contains(gerr.Message, v) {
			t.Fatalf("refusal %q repeats a value of the body", gerr.Message)
		}
	}
}

// walkJSON collects the object keys and the string values of doc.
func walkJSON(doc any, names map[string]bool, values *[]string) {
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			names[k] = true
			walkJSON(v, names, values)
		}
	case []any:
		for _, v := range d {
			walkJSON(v, names, values)
		}
	case string:
		*values = append(*values, d)
	}
}
