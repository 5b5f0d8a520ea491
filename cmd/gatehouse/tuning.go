package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"gatehouse/provision"
	"gatehouse/server"
)

// tuning are serve's performance settings: how long a device's wait is
// held and how many are held at most, the re-poll pace of the others, how
// many steps run at once, how often idle workers look for jobs, how long
// one attempt of a step may take and when a step left running by a dead
// process is taken up again, and how often a waiting gateway's last-seen
// time is written.
type tuning struct {
	longPoll    time.Duration
	maxHeld     int
	repollRate  float64
	workers     int
	jobPoll     time.Duration
	jobTimeout  time.Duration
	rescueAfter time.Duration
	seenEvery   time.Duration
}

// tuningFlags defines the tuning flags on fs, each defaulting to its
// environment variable, else to the built-in default.
func tuningFlags(fs *flag.FlagSet, getenv func(string) string) (*tuning, error) {
	t := &tuning{longPoll: server.DefaultLongPoll, maxHeld: provision.DefaultMaxHeldPolls, repollRate: provision.DefaultRepollRate,
		workers: provision.DefaultWorkers, jobPoll: provision.DefaultPollInterval, seenEvery: provision.DefaultSeenEvery,
		jobTimeout: provision.DefaultJobTimeout, rescueAfter: provision.DefaultRescueAfter}
	err := errors.Join(
		envDuration(getenv, "GATEHOUSE_LONG_POLL", &t.longPoll),
		envInt(getenv, "GATEHOUSE_MAX_HELD_POLLS", &t.maxHeld),
		envFloat(getenv, "GATEHOUSE_REPOLL_RATE", &t.repollRate),
		envInt(getenv, "GATEHOUSE_WORKERS", &t.workers),
		envDuration(getenv, "GATEHOUSE_JOB_POLL", &t.jobPoll),
		envDuration(getenv, "GATEHOUSE_JOB_TIMEOUT", &t.jobTimeout),
		envDuration(getenv, "GATEHOUSE_RESCUE_AFTER", &t.rescueAfter),
		envDuration(getenv, "GATEHOUSE_SEEN_EVERY", &t.seenEvery),
	)
	fs.DurationVar(&t.longPoll, "long-poll", t.longPoll, "how long a waiting gateway's request is held before it is answered "+
		"unchanged and the agent asks again (env GATEHOUSE_LONG_POLL)")
	fs.IntVar(&t.maxHeld, "max-held-polls", t.maxHeld, "waiting gateways whose request is held open at once, those that began "+
		"waiting most recently; the others are told when to ask again. Each held request takes a file descriptor: keep this "+
		"well under the process's limit (env GATEHOUSE_MAX_HELD_POLLS)")
	fs.Float64Var(&t.repollRate, "repoll-rate", t.repollRate, "requests a second that the waiting gateways not held may make in "+
		"all; their time to ask again grows with their number, from 10 s to 10 min (env GATEHOUSE_REPOLL_RATE)")
	fs.IntVar(&t.workers, "workers", t.workers, "provisioning steps that may run at once; follow-ups and webhooks get half and a "+
		"quarter as many (env GATEHOUSE_WORKERS)")
	fs.DurationVar(&t.jobPoll, "job-poll", t.jobPoll, "how often idle workers look for new jobs, as a backup to the "+
		"announcement each job gets when it is committed (env GATEHOUSE_JOB_POLL)")
	fs.DurationVar(&t.jobTimeout, "job-timeout", t.jobTimeout, "how long one attempt of one provisioning step may take, "+
		"backend calls and waits for their quotas included, before it is cut off and retried with backoff. Too short cuts "+
		"slow backend calls off; it must stay under --rescue-after (env GATEHOUSE_JOB_TIMEOUT)")
	fs.DurationVar(&t.rescueAfter, "rescue-after", t.rescueAfter, "how long a step may be marked running before it is "+
		"taken to be left by a dead process (a crash, a replica lost) and run again; must exceed --job-timeout. Too short "+
		"runs again a step still running on another replica: harmless, since every step is idempotent, but wasted "+
		"backend calls; too long delays the gateways a crash left waiting (env GATEHOUSE_RESCUE_AFTER)")
	fs.DurationVar(&t.seenEvery, "seen-every", t.seenEvery, "how often a waiting gateway's last-seen time is written; "+
		"re-polls in between write nothing (env GATEHOUSE_SEEN_EVERY)")
	return t, err
}

// check refuses settings that could not work.
func (t *tuning) check() error {
	switch {
	case t.longPoll < time.Second || t.longPoll > 10*time.Minute:
		return errors.New("--long-poll must be between 1s and 10m")
	case t.maxHeld < 1:
		return errors.New("--max-held-polls must be at least 1")
	case t.repollRate <= 0:
		return errors.New("--repoll-rate must be above 0")
	case t.workers < 1:
		return errors.New("--workers must be at least 1")
	case t.jobPoll < time.Millisecond:
		return errors.New("--job-poll must be at least 1ms")
	case t.seenEvery < 0:
		return errors.New("--seen-every must not be negative")
	case t.jobTimeout < time.Second:
		return errors.New("--job-timeout must be at least 1s")
	case t.rescueAfter <= t.jobTimeout:
		// A step is rescued only once it has outlived any attempt that may
		// still be running on another replica. provision.New refuses this
		// too, but only after the database is open and without naming the
		// settings; here it is refused with the rest of the flags.
		return fmt.Errorf("--rescue-after (%v) must exceed --job-timeout (%v): a step still in its attempt on another "+
			"replica would be run a second time at once", t.rescueAfter, t.jobTimeout)
	}
	return nil
}

func (t *tuning) apply(cfg *appConfig) {
	cfg.LongPoll = t.longPoll
	cfg.Jobs.Workers, cfg.Jobs.PollInterval, cfg.Jobs.SeenEvery = t.workers, t.jobPoll, t.seenEvery
	cfg.Jobs.JobTimeout, cfg.Jobs.RescueAfter = t.jobTimeout, t.rescueAfter
	cfg.Jobs.MaxHeldPolls, cfg.Jobs.RepollRate = t.maxHeld, t.repollRate
}
