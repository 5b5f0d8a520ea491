package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
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
