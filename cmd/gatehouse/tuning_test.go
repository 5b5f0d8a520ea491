package main

import (
	"flag"
	"io"
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
		cfg.Jobs.MaxHeldPolls != provision.DefaultMaxHeldPolls || cfg.Jobs.RepollRate != provision.DefaultRepollRate {
		t.Errorf("defaults: %+v %+v", cfg.LongPoll, cfg.Jobs)
	}
	tu, err = parseTuning(t, map[string]string{"GATEHOUSE_LONG_POLL": "45s", "GATEHOUSE_WORKERS": "8"}, "--workers", "4", "--job-poll", "250ms", "--seen-every", "2m", "--max-held-polls", "300", "--repoll-rate", "25")
	if err != nil {
		t.Fatal(err)
	}
	tu.apply(&cfg)
	if cfg.LongPoll != 45*time.Second || cfg.Jobs.Workers != 4 || cfg.Jobs.PollInterval != 250*time.Millisecond || cfg.Jobs.SeenEvery != 2*time.Minute ||
		cfg.Jobs.MaxHeldPolls != 300 || cfg.Jobs.RepollRate != 25 {
		t.Errorf("env and flags: %v %+v; the flag wins over the environment", cfg.LongPoll, cfg.Jobs)
	}
	for _, bad := range [][]string{{"--long-poll", "100ms"}, {"--workers", "0"}, {"--job-poll", "0s"}, {"--seen-every", "-1s"}, {"--max-held-polls", "0"}, {"--repoll-rate", "0"}} {
		if _, err := parseTuning(t, nil, bad...); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0])
		}
	}
	if _, err := parseTuning(t, map[string]string{"GATEHOUSE_WORKERS": "many"}); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_WORKERS") {
		t.Errorf("malformed env: %v", err)
	}
}
