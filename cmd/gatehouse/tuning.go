package main

import (
	"errors"
	"flag"
	"time"

	"gatehouse/provision"
	"gatehouse/server"
)

// tuning are serve's performance settings: how long a device's wait is
// held, how many steps run at once, how often idle workers look for jobs,
// and how often a waiting gateway's last-seen time is written.
type tuning struct {
	longPoll  time.Duration
	workers   int
	jobPoll   time.Duration
	seenEvery time.Duration
}

// tuningFlags defines the tuning flags on fs, each defaulting to its
// environment variable, else to the built-in default.
func tuningFlags(fs *flag.FlagSet, getenv func(string) string) (*tuning, error) {
	t := &tuning{longPoll: server.DefaultLongPoll, workers: provision.DefaultWorkers,
		jobPoll: provision.DefaultPollInterval, seenEvery: provision.DefaultSeenEvery}
	err := errors.Join(
		envDuration(getenv, "GATEHOUSE_LONG_POLL", &t.longPoll),
		envInt(getenv, "GATEHOUSE_WORKERS", &t.workers),
		envDuration(getenv, "GATEHOUSE_JOB_POLL", &t.jobPoll),
		envDuration(getenv, "GATEHOUSE_SEEN_EVERY", &t.seenEvery),
	)
	fs.DurationVar(&t.longPoll, "long-poll", t.longPoll, "how long a waiting gateway's request is held before it is answered "+
		"unchanged and the agent asks again (env GATEHOUSE_LONG_POLL)")
	fs.IntVar(&t.workers, "workers", t.workers, "provisioning steps that may run at once; follow-ups and webhooks get half and a "+
		"quarter as many (env GATEHOUSE_WORKERS)")
	fs.DurationVar(&t.jobPoll, "job-poll", t.jobPoll, "how often idle workers look for new jobs, as a backup to the "+
		"announcement each job gets when it is committed (env GATEHOUSE_JOB_POLL)")
	fs.DurationVar(&t.seenEvery, "seen-every", t.seenEvery, "how often a waiting gateway's last-seen time is written; "+
		"re-polls in between write nothing (env GATEHOUSE_SEEN_EVERY)")
	return t, err
}

// check refuses settings that could not work.
func (t *tuning) check() error {
	switch {
	case t.longPoll < time.Second || t.longPoll > 10*time.Minute:
		return errors.New("--long-poll must be between 1s and 10m")
	case t.workers < 1:
		return errors.New("--workers must be at least 1")
	case t.jobPoll < time.Millisecond:
		return errors.New("--job-poll must be at least 1ms")
	case t.seenEvery < 0:
		return errors.New("--seen-every must not be negative")
	}
	return nil
}

func (t *tuning) apply(cfg *appConfig) {
	cfg.LongPoll = t.longPoll
	cfg.Jobs.Workers, cfg.Jobs.PollInterval, cfg.Jobs.SeenEvery = t.workers, t.jobPoll, t.seenEvery
}
