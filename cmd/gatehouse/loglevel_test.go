package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogLevels(t *testing.T) {
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
	for i, name := range []string{"debug", "INFO", " warn ", "error"} {
		log, err := newLogger(io.Discard, name)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		for j, l := range levels {
			if got := log.Enabled(context.Background(), l); got != (j >= i) {
				t.Errorf("--log-level %q: %v enabled = %v", name, l, got)
			}
		}
	}
}

// A level that does not parse stops serve and demo before anything starts,
// whether it came from the flag or the environment.
func TestBadLogLevelRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "g.db")
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"serve flag": {[]string{"serve", "--db", db, "--log-level", "verbose"}, nil},
		"serve env":  {[]string{"serve", "--db", db}, map[string]string{"GATEHOUSE_LOG_LEVEL": "verbose"}},
		"demo flag":  {[]string{"demo", "--gateways", "0", "--log-level", "verbose"}, nil},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), c.args, &stdout, &stderr, func(k string) string { return c.env[k] })
		if code != 2 || !strings.Contains(stderr.String(), `--log-level must be debug, info, warn or error, not "verbose"`) {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%s: printed %q", name, stdout.String())
		}
	}
}

// --log-format json writes one JSON object per line, with the request id
// and route of every request, which log collectors index; a bad format is
// refused before anything starts.
func TestJSONLogs(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLoggerAs(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	cfg := appConfig{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "g.db"), Logger: log}
	a, err := startApp(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(a.server.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var sawRequest bool
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q (%v)", line, err)
		}
		if rec["msg"] == "http request" && rec["route"] == "GET /healthz" {
			sawRequest = rec["request_id"] != "" && rec["request_id"] != nil
		}
	}
	if !sawRequest {
		t.Errorf("no JSON line for the request with its request id:\n%s", buf.String())
	}
	var stderr bytes.Buffer
	code := run(t.Context(), []string{"serve", "--db", filepath.Join(t.TempDir(), "h.db"), "--log-format", "xml"}, io.Discard, &stderr, func(string) string { return "" })
	if code != 2 || !strings.Contains(stderr.String(), `--log-format must be text or json, not "xml"`) {
		t.Errorf("bad format: exit %d, stderr %q", code, stderr.String())
	}
}
