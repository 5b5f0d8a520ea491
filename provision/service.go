// Package provision holds gatehouse's rules: devices enroll, operators
// approve or dismiss them, and durable jobs provision each approved device
// into every configured backend. Stores stay dumb; every decision is here.
package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/store"
	"gatehouse/webhook"
)

// Config configures a Service. Zero values take the documented defaults.
type Config struct {
	// Backends are the services devices are provisioned into, in the order
	// their steps are shown; see gatehouse.Backend.
	Backends []gatehouse.Backend
	// Notifier wakes long polls; default a LocalNotifier, or on PostgreSQL
	// one that also hears of changes made by other replicas.
	Notifier Notifier
	// Logger receives operational logs; default discards.
	Logger *slog.Logger
	// Workers is how many provisioning steps run at once; default
	// DefaultWorkers.
	Workers int
	// RetryBase and RetryMax shape the backoff of failed steps: RetryBase
	// doubling per attempt, capped at RetryMax, with jitter. Defaults 1 s, 5 min.
	RetryBase, RetryMax time.Duration
	// JobTimeout bounds one attempt of one step; default DefaultJobTimeout.
	JobTimeout time.Duration
	// RescueAfter is when a step left running by a crashed process is taken
	// up again; default DefaultRescueAfter. Must exceed JobTimeout, or a
	// step still within its attempt on another replica would be run twice
	// at once.
	RescueAfter time.Duration
	// FollowDeadline is how long a provisioned gateway may take to be
	// assigned to a hub before it is marked stalled; default 24 h.
	FollowDeadline time.Duration
	// FollowPollMin and FollowPollMax bound how often DPS is asked about a
	// waiting gateway: often at first, then rarely. Defaults 2 s and 5 min.
	FollowPollMin, FollowPollMax time.Duration
	// Webhook, if set, receives every state change as a signed event.
	Webhook *webhook.Sender
	// PollInterval is how often idle workers look for new jobs; default
	// DefaultPollInterval. New jobs are announced when their transaction
	// commits (LISTEN/NOTIFY on PostgreSQL, River's notification table on
	// SQLite), so polling only backs that up.
	PollInterval time.Duration
	// SeenEvery bounds how often a waiting gateway's last-seen time is
	// written: re-polls in between write nothing. Default DefaultSeenEvery.
	SeenEvery time.Duration
	// MaxHeldPolls is how many device waits this process holds open at
	// once; past it the gateways that have waited longest in their state
	// are answered with a time to ask again (see holds). Default
	// DefaultMaxHeldPolls; keep it well under the process's file limit.
	MaxHeldPolls int
	// RepollRate is the re-polls a second the gateways turned away make in
	// all: their time to ask again grows with their number. Default
	// DefaultRepollRate.
	RepollRate float64
	// PendingCap is how many gateways may wait for approval at once; past
	// it new keys are refused (503) until an operator approves or dismisses
	// some, while known gateways keep working. Default DefaultPendingCap.
	PendingCap int
	// PendingExpiry is how long a pending gateway may stay unheard from
	// before it is removed; default DefaultPendingExpiry.
	PendingExpiry time.Duration
	// Metrics, if set, is told of approvals and step attempts; default
	// records nothing.
	Metrics Metrics
}

// Defaults of the Config settings serve exposes as flags.
const (
	DefaultWorkers      = 20
	DefaultPollInterval = time.Second
	DefaultSeenEvery    = 30 * time.Second
	DefaultMaxHeldPolls = 10000
	DefaultRepollRate   = 500
	DefaultJobTimeout   = 2 * time.Minute
	DefaultRescueAfter  = 5 * time.Minute
)

func (c Config) withDefaults() Config {
	if c.Notifier == nil {
		c.Notifier = NewLocalNotifier()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	setDefault(&c.Workers, DefaultWorkers)
	setDefault(&c.RetryBase, time.Second)
	setDefault(&c.RetryMax, 5*time.Minute)
	setDefault(&c.JobTimeout, DefaultJobTimeout)
	setDefault(&c.RescueAfter, DefaultRescueAfter)
	setDefault(&c.PollInterval, DefaultPollInterval)
	setDefault(&c.SeenEvery, DefaultSeenEvery)
	setDefault(&c.FollowDeadline, 24*time.Hour)
	setDefault(&c.FollowPollMin, 2*time.Second)
	setDefault(&c.FollowPollMax, 5*time.Minute)
	setDefault(&c.MaxHeldPolls, DefaultMaxHeldPolls)
	setDefault(&c.RepollRate, DefaultRepollRate)
	setDefault(&c.PendingCap, DefaultPendingCap)
	setDefault(&c.PendingExpiry, DefaultPendingExpiry)
	return c
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Service applies gatehouse's rules over a store and a job queue.
type Service struct {
	db     *store.DB
	cfg    Config
	log    *slog.Logger
	notify Notifier
	jobs   *store.Jobs
	secret []byte // keys verification codes; never logged
	// refusals rate-limits audit entries of refused credentials.
	refusals refusalLimiter

	pending *pendingGauge // the pending queue's size, for its cap
	group   groupCommit   // shares commits between step transactions
	holds   *holds        // the device waits held open
	// sessions grants and checks device sessions, under a secret every
	// replica shares.
	sessions *protocol.Sessions

	replica     *replicaNotifier // nil on SQLite
	stopListen  context.CancelFunc
	listenEnded chan struct{}
}

// New builds a Service. Call Start to begin working provisioning jobs.
func New(db *store.DB, cfg Config) (*Service, error) {
	shared := cfg.Notifier == nil && db.Postgres()
	cfg = cfg.withDefaults()
	var replica *replicaNotifier
	if shared {
		replica = newReplicaNotifier(db, cfg.Logger)
		cfg.Notifier = replica
	}
	if cfg.RescueAfter <= cfg.JobTimeout {
		return nil, errors.New("provision: RescueAfter must exceed JobTimeout")
	}
	if cfg.PendingCap < 0 || cfg.PendingExpiry < 0 {
		return nil, errors.New("provision: PendingCap and PendingExpiry must not be negative")
	}
	if cfg.MaxHeldPolls < 0 || cfg.RepollRate < 0 {
		return nil, errors.New("provision: MaxHeldPolls and RepollRate must not be negative")
	}
	secret, err := loadServerSecret(db, codeSecretName)
	if err != nil {
		return nil, err
	}
	sessionSecret, err := loadServerSecret(db, sessionSecretName)
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, cfg: cfg, log: cfg.Logger, notify: cfg.Notifier, secret: secret, replica: replica,
		pending:  &pendingGauge{cap: cfg.PendingCap, log: cfg.Logger, now: time.Now},
		holds:    newHolds(cfg.MaxHeldPolls, cfg.RepollRate, time.Now),
		sessions: protocol.NewSessions(sessionSecret)}
	jobs, err := newJobClient(db, s)
	if err != nil {
		return nil, err
	}
	s.jobs = jobs
	return s, nil
}

// Start stores the verification codes devices enrolled before codes were
// stored lack, then begins working provisioning jobs until Stop.
func (s *Service) Start(ctx context.Context) error {
	if err := s.backfillCodes(ctx); err != nil {
		return fmt.Errorf("provision: store verification codes: %w", err)
	}
	if err := s.requeueOrphans(ctx); err != nil {
		return err
	}
	if err := s.jobs.Start(ctx); err != nil {
		return fmt.Errorf("provision: start job runner: %w", err)
	}
	if s.replica != nil {
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopListen, s.listenEnded = cancel, make(chan struct{})
		go func() {
			defer close(s.listenEnded)
			s.replica.run(lctx)
		}()
	}
	return nil
}

// requeueOrphans takes up at once the steps a killed process left running
// (on SQLite; see store.Jobs.RequeueOrphans): the gateways they belong to
// would otherwise wait RescueAfter for them.
func (s *Service) requeueOrphans(ctx context.Context) error {
	n, err := s.jobs.RequeueOrphans(ctx)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if n > 0 {
		s.log.Info("steps left running by a process that stopped are queued again", "jobs", n)
	}
	return nil
}

// Stop lets running steps finish (until ctx is done) and stops the runner.
func (s *Service) Stop(ctx context.Context) error {
	defer s.stopListening()
	return s.jobs.Stop(ctx)
}

// stopListening ends the replica listener, once the runner is stopped (a
// step finishing meanwhile still tells the others).
func (s *Service) stopListening() {
	if s.stopListen != nil {
		s.stopListen()
		<-s.listenEnded
	}
}

// Ready reports whether the database answers and its schema is current.
func (s *Service) Ready(ctx context.Context) error { return s.db.Ready(ctx) }

// Notifier returns the notifier long polls wait on.
func (s *Service) Notifier() Notifier { return s.notify }

// Sessions mints and opens device sessions (see protocol.Sessions).
func (s *Service) Sessions() *protocol.Sessions { return s.sessions }

// StopAndCancel stops the runner and cancels steps in flight, for shutdowns
// that cannot wait.
func (s *Service) StopAndCancel(ctx context.Context) error {
	defer s.stopListening()
	return s.jobs.StopAndCancel(ctx)
}
