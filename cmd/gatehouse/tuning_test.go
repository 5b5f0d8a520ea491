package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/provision"
	"gatehouse/server"
)

func parseTuning(t *testing.T, env map[string]string, args ...string) (*tuning, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tu, err := tuningFlags(fs, func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return tu, tu.check()
}

func TestTuningDefaultsEnvAndFlags(t *testing.T) {
	tu, err := parseTuning(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg appConfig
	tu.apply(&cfg)
	if cfg.LongPoll != server.DefaultLongPoll || cfg.Jobs.Workers != provision.DefaultWorkers ||
		cfg.Jobs.PollInterval != provision.DefaultPollInterval || cfg.Jobs.SeenEvery != provision.DefaultSeenEvery ||
		cfg.Jobs.MaxHeldPolls != provision.DefaultMaxHeldPolls || cfg.Jobs.RepollRate != provision.DefaultRepollRate ||
		cfg.Jobs.JobTimeout != 2*time.Minute || cfg.Jobs.RescueAfter != 5*time.Minute {
		t.Errorf("defaults: %+v %+v", cfg.LongPoll, cfg.Jobs)
	}
	tu, err = parseTuning(t, map[string]string{"GATEHOUSE_LONG_POLL": "45s", "GATEHOUSE_WORKERS": "8", "GATEHOUSE_JOB_TIMEOUT": "15s", "GATEHOUSE_RESCUE_AFTER": "1h"},
		"--workers", "4", "--job-poll", "250ms", "--seen-every", "2m", "--max-held-polls", "300", "--repoll-rate", "25", "--rescue-after", "20s")
	if err != nil {
		t.Fatal(err)
	}
	tu.apply(&cfg)
	if cfg.LongPoll != 45*time.Second || cfg.Jobs.Workers != 4 || cfg.Jobs.PollInterval != 250*time.Millisecond || cfg.Jobs.SeenEvery != 2*time.Minute ||
		cfg.Jobs.MaxHeldPolls != 300 || cfg.Jobs.RepollRate != 25 || cfg.Jobs.JobTimeout != 15*time.Second || cfg.Jobs.RescueAfter != 20*time.Second {
		t.Errorf("env and flags: %v %+v; the flag wins over the environment", cfg.LongPoll, cfg.Jobs)
	}
	for _, bad := range [][]string{{"--long-poll", "100ms"}, {"--workers", "0"}, {"--job-poll", "0s"}, {"--seen-every", "-1s"}, {"--max-held-polls", "0"}, {"--repoll-rate", "0"},
		{"--job-timeout", "500ms"}, {"--rescue-after", "2m"}, {"--rescue-after", "90s"}} {
		if _, err := parseTuning(t, nil, bad...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0])
		}
	}
	for _, key := range []string{"GATEHOUSE_WORKERS", "GATEHOUSE_JOB_TIMEOUT", "GATEHOUSE_RESCUE_AFTER"} {
		if _, err := parseTuning(t, map[string]string{key: "many"}); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("malformed %s: %v", key, err)
		}
	}
}

// TestTuningRescueMustExceedJobTimeout: the rescue of a step left running
// must come after any attempt of it could have ended, however the two are
// given, and the refusal names both settings.
func TestTuningRescueMustExceedJobTimeout(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		ok   bool
	}{
		{env: map[string]string{"GATEHOUSE_JOB_TIMEOUT": "10m"}},           // past the default rescue
		{args: []string{"--job-timeout", "5m"}},                            // equal to it
		{env: map[string]string{"GATEHOUSE_RESCUE_AFTER": "1m"}},           // under the default timeout
		{env: map[string]string{"GATEHOUSE_RESCUE_AFTER": "3m"}, ok: true}, // over it
		{args: []string{"--job-timeout", "10m", "--rescue-after", "11m"}, ok: true},
		{env: map[string]string{"GATEHOUSE_JOB_TIMEOUT": "15s", "GATEHOUSE_RESCUE_AFTER": "20s"}, ok: true},
	} {
		_, err := parseTuning(t, c.env, c.args...)
		switch {
		case c.ok && err != nil:
			t.Errorf("env %v, args %v: %v", c.env, c.args, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "--rescue-after") || !strings.Contains(err.Error(), "--job-timeout")):
			t.Errorf("env %v, args %v: %v, want a refusal naming --rescue-after and --job-timeout", c.env, c.args, err)
		}
	}
}

// TestServeRefusesRescueWithinJobTimeout: serve checks the order with its
// other flags and exits 2 before it opens the database.
func TestServeRefusesRescueWithinJobTimeout(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "g.db")
	var stderr bytes.Buffer
	env := map[string]string{"GATEHOUSE_RESCUE_AFTER": "30s"}
	code := runServe(t.Context(), []string{"--listen", "127.0.0.1:0", "--db", db, "--job-timeout", "45s"}, &bytes.Buffer{}, &stderr,
		func(k string) string { return env[k] })
	if code != 2 || !strings.Contains(stderr.String(), "--rescue-after (30s) must exceed --job-timeout (45s)") {
		t.Fatalf("exit %d, stderr %q; want 2 and the refusal", code, stderr.String())
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the database was touched before the refusal: %v", err)
	}
}
