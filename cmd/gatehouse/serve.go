package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/config"
	"gatehouse/metrics"
	"gatehouse/provision"
	"gatehouse/rest"
	"gatehouse/sandbox"
	"gatehouse/server"
	"gatehouse/sso"
	"gatehouse/store"
)

// appConfig is what serve and demo share.
type appConfig struct {
	Listen string
	TLS    *server.Certificate // nil serves plain HTTP
	DB     string
	// NoMigrate leaves the schema to "gatehouse migrate" and refuses a
	// database whose schema is not the one this build needs.
	NoMigrate bool
	Backends  []gatehouse.Backend
	Logger    *slog.Logger
	// Jobs tunes the provisioning runner; Backends and Logger above win.
	Jobs provision.Config
	// OIDC turns on single sign-on; nil leaves it off.
	OIDC *sso.Config
	// SimulatedBackends: the backends are simulators; the page says so.
	SimulatedBackends bool
	// DeviceRate and DeviceBurst limit the device API per source address;
	// zero keeps the server's defaults.
	DeviceRate  rate.Limit
	DeviceBurst int
	// LongPoll is how long a device's wait is held; zero keeps the server's
	// default.
	LongPoll time.Duration
	// Quotas are the backend clients' call budgets: on PostgreSQL every
	// replica draws from the same one.
	Quotas []*rest.Quota
	// ShutdownGrace is how long running steps may take to finish once a
	// shutdown has stopped the HTTP side; those still running are then
	// cancelled and run again on the next start. Zero: defaultShutdownGrace;
	// negative: cancel them at once.
	ShutdownGrace time.Duration
	// shutdownCancelWait is how long cancelled steps get to return and be
	// put back in the queue; zero: defaultShutdownCancelWait.
	shutdownCancelWait time.Duration
	// afterApproveCommit is the crash tests' hook (killAfterApproveEnv);
	// nil outside them.
	afterApproveCommit func(deviceID string)
}

const (
	defaultShutdownGrace      = 10 * time.Second
	defaultShutdownCancelWait = 5 * time.Second
	// httpShutdownTimeout bounds the wait for requests in flight at
	// shutdown. Held long polls are answered at once; an API call gets this
	// long, then its connection is closed.
	httpShutdownTimeout = 5 * time.Second
)

// app is a running server: database, job runner and HTTP.
type app struct {
	db     *store.DB
	svc    *provision.Service
	server *server.Server
	// grace and cancelWait shape the job runner's stop; see appConfig.
	grace, cancelWait time.Duration
}

func startApp(ctx context.Context, cfg appConfig) (*app, error) {
	// A busy port is told before the database is opened (created, even,
	// or migrated) and the job runner started, all for nothing. Open below
	// still says so should another process take the port in between.
	if err := portFree(cfg.Listen); err != nil {
		return nil, err
	}
	db, err := openDB(ctx, cfg.DB, !cfg.NoMigrate)
	if err != nil {
		return nil, err
	}
	// On SQLite this process becomes the database's one server, and its
	// nonces go to a log beside it (store.DB.ClaimNonces).
	err = db.ClaimNonces(ctx)
	if errors.Is(err, store.ErrNoNonceLog) {
		if cfg.Logger != nil {
			cfg.Logger.Warn("no nonce log beside the database: device requests wait until it can be written", "err", err)
		}
		err = nil
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	if db.Postgres() {
		for _, q := range cfg.Quotas {
			q.Share(db.Quota(q.Name, q.Burst(), q.Rate()))
		}
	}
	if cfg.Logger != nil {
		// Lines logged while handling a request carry its request_id.
		cfg.Logger = slog.New(gatehouse.OriginLogs(cfg.Logger.Handler()))
	}
	m := metrics.New(db, cfg.Logger)
	jobs := cfg.Jobs
	jobs.Backends, jobs.Logger, jobs.Metrics = cfg.Backends, cfg.Logger, m
	svc, err := provision.New(db, jobs)
	if err != nil {
		db.Close()
		return nil, err
	}
	a := &app{db: db, svc: svc, server: server.New(svc), grace: max(cfg.ShutdownGrace, 0), cancelWait: cfg.shutdownCancelWait}
	if cfg.ShutdownGrace == 0 {
		a.grace = defaultShutdownGrace
	}
	if a.cancelWait <= 0 {
		a.cancelWait = defaultShutdownCancelWait
	}
	a.server.Addr, a.server.Logger, a.server.TLS, a.server.Metrics = cfg.Listen, cfg.Logger, cfg.TLS, m
	a.server.SimulatedBackends = cfg.SimulatedBackends
	a.server.AfterApproveCommit = cfg.afterApproveCommit
	if cfg.OIDC != nil {
		if a.server.SSO, err = startSSO(ctx, svc, *cfg.OIDC, cfg.Logger); err != nil {
			db.Close()
			return nil, err
		}
	}
	if cfg.DeviceRate != 0 {
		a.server.DeviceRate, a.server.DeviceBurst = cfg.DeviceRate, cfg.DeviceBurst
	}
	if cfg.LongPoll != 0 {
		a.server.LongPoll = cfg.LongPoll
	}
	// Not ctx itself: River cancels running steps the moment its start
	// context ends, and serve's ends at SIGTERM; Close stops it with a grace.
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		db.Close()
		return nil, err
	}
	if err := a.server.Open(); err != nil {
		a.Close()
		return nil, listenError(cfg.Listen, err)
	}
	return a, nil
}

// busyError is a listen address another process holds, said the way the
// person who typed it can act on: the bind error's text is left out.
type busyError struct {
	addr, alt string
	err       error
}

func (e *busyError) Error() string {
	return fmt.Sprintf("address %s is already in use; choose another with --listen %s", e.addr, e.alt)
}

func (e *busyError) Unwrap() error { return e.err }

// portFree says whether addr's port is taken, by listening on it for a
// moment. Any other trouble is left to the real listen, to report.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return listenError(addr, err)
		}
		return nil
	}
	ln.Close()
	return nil
}

// listenError answers a busy port with the address and one near it that is
// free as the message is written; other errors pass unchanged.
func listenError(addr string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return err
	}
	return &busyError{addr: addr, alt: freeNear(addr), err: err}
}

// freeNear is addr with the first of the next few ports that can be
// listened on, or with port 0 (any free port) if none can.
func freeNear(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		return net.JoinHostPort(host, "0")
	}
	for next := p + 1; next <= min(p+20, 65535); next++ {
		try := net.JoinHostPort(host, strconv.Itoa(next))
		if ln, err := net.Listen("tcp", try); err == nil {
			ln.Close()
			return try
		}
	}
	return net.JoinHostPort(host, "0")
}

// startSSO reads the provider's discovery document, so a wrong issuer
// stops the start rather than the first sign-in.
func startSSO(ctx context.Context, svc *provision.Service, c sso.Config, log *slog.Logger) (server.SSO, error) {
	key, err := svc.SSOFlowKey(ctx)
	if err != nil {
		return nil, err
	}
	s, err := sso.New(ctx, c, sso.Options{Key: key, Logger: log})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops HTTP first, so no new work arrives and held long polls are
// answered at once (the agents ask again), then gives running steps their
// grace before cancelling the rest back to the queue, then closes the
// database. Each part has its own deadline, so one stuck part cannot eat
// another's time. Every failure reaches the caller, and so the exit code.
func (a *app) Close() error {
	var errs []error
	httpCtx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := a.server.Close(httpCtx); err != nil {
		errs = append(errs, fmt.Errorf("stop serving: %w", err))
	}
	jobsCtx, cancel := context.WithTimeout(context.Background(), a.grace+a.cancelWait)
	defer cancel()
	if err := a.svc.Shutdown(jobsCtx, a.grace); err != nil {
		errs = append(errs, fmt.Errorf("stop the job runner: %w", err))
	}
	if err := a.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the database: %w", err))
	}
	return errors.Join(errs...)
}

// openDB opens the database, migrating it or else checking it needs none.
func openDB(ctx context.Context, dsn string, migrate bool) (*store.DB, error) {
	if migrate {
		return store.Open(ctx, dsn)
	}
	db, err := store.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	have, err := db.SchemaVersionIfAny(ctx)
	want, lerr := db.LatestSchemaVersion()
	switch err = errors.Join(err, lerr); {
	case err != nil:
	case have > want:
		err = fmt.Errorf("the database schema is at version %d, written by a newer gatehouse than this one (%d): run the newer version", have, want)
	default:
		if err = db.SchemaCurrent(ctx); errors.Is(err, store.ErrSchemaBehind) {
			err = fmt.Errorf("%w: run 'gatehouse migrate' first (or drop --migrate=false)", err)
		}
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// serveUntil runs an app on cfg until ctx ends, then shuts it down, and
// returns serve's exit code: 1 if it did not start or did not stop cleanly.
// started is told of the running app.
func serveUntil(ctx context.Context, cfg appConfig, stderr io.Writer, started func(*app)) int {
	a, err := startApp(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 1
	}
	started(a)
	<-ctx.Done()
	cfg.Logger.Info("shutting down", "grace", a.grace)
	start := time.Now()
	if err := a.Close(); err != nil {
		cfg.Logger.Error("shutdown failed", "err", err, "took", time.Since(start).Round(time.Millisecond))
		return 1
	}
	cfg.Logger.Info("shut down", "took", time.Since(start).Round(time.Millisecond))
	return 0
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", envOr(getenv, "GATEHOUSE_LISTEN", ":8080"), "listen address (env GATEHOUSE_LISTEN)")
	dbPath := fs.String("db", envOr(getenv, "GATEHOUSE_DB", "gatehouse.db"), "database: a SQLite file path, or a postgres:// URL for several replicas (env GATEHOUSE_DB)")
	migrate := fs.Bool("migrate", true, "bring the database schema up to date at start; with false, refuse to start until 'gatehouse migrate' has")
	cfgFile := fs.String("config", getenv("GATEHOUSE_CONFIG"), "file of KEY=VALUE backend settings (env GATEHOUSE_CONFIG); see README")
	simulated := fs.Bool("simulate-backends", false, "provision into simulated Mender, DPS, IoT Hub and Vault servers on loopback (for trials: nothing real is provisioned)")
	certFile := fs.String("tls-cert", getenv("GATEHOUSE_TLS_CERT"), "serve HTTPS with this PEM certificate (chain) `FILE`; reloaded on SIGHUP (env GATEHOUSE_TLS_CERT)")
	keyFile := fs.String("tls-key", getenv("GATEHOUSE_TLS_KEY"), "PEM private key `FILE` for --tls-cert (env GATEHOUSE_TLS_KEY)")
	logs := addLogFlags(fs, getenv)
	limits, envErr := floodFlags(fs, getenv)
	tune, tuneErr := tuningFlags(fs, getenv)
	grace, graceErr := graceFlag(fs, getenv)
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if err := errors.Join(envErr, graceErr, tuneErr, limits.check(), tune.check(), checkGrace(*grace)); err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	log, err := logs.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	cert, err := loadTLS(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	afterApprove, err := killAfterApprove(getenv, stderr, chance, killSelf)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	tuneGC(getenv)
	if addr := getenv("GATEHOUSE_PPROF"); addr != "" {
		if err := servePprof(addr, log); err != nil {
			fmt.Fprintln(stderr, "gatehouse: GATEHOUSE_PPROF:", err)
			return 2
		}
	}
	cfg, stop, err := serveSetup(getenv, *cfgFile, *simulated, log)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse:", err)
		return 2
	}
	defer stop()
	if cert != nil {
		reloadOnHangup(ctx, cert, log)
	}
	cfg.Listen, cfg.DB, cfg.Logger, cfg.TLS, cfg.NoMigrate = *listen, *dbPath, log, cert, !*migrate
	limits.apply(&cfg)
	tune.apply(&cfg)
	cfg.ShutdownGrace, cfg.afterApproveCommit = *grace, afterApprove
	if *grace == 0 {
		cfg.ShutdownGrace = -1 // 0 on the command line: cancel running steps at once
	}
	backends := describe(cfg.Backends)
	if *simulated {
		backends += " (all simulated)"
	}
	return serveUntil(ctx, cfg, stderr, func(a *app) {
		log.Info("gatehouse serving", "url", a.server.URL(), "db", store.Describe(*dbPath), "backends", backends, "sso", describeSSO(cfg.OIDC))
	})
}

// graceFlag defines --shutdown-grace, defaulting to its environment variable.
func graceFlag(fs *flag.FlagSet, getenv func(string) string) (*time.Duration, error) {
	d := defaultShutdownGrace
	err := envDuration(getenv, "GATEHOUSE_SHUTDOWN_GRACE", &d)
	fs.DurationVar(&d, "shutdown-grace", d, "on SIGTERM, how long running provisioning steps may take to finish before they are "+
		"cancelled and left queued for the next start; 0 cancels them at once (env GATEHOUSE_SHUTDOWN_GRACE)")
	return &d, err
}

func checkGrace(d time.Duration) error {
	if d < 0 {
		return errors.New("--shutdown-grace must not be negative")
	}
	return nil
}

// serveSetup builds the backend clients and job settings from the
// configuration, or from freshly started simulators.
func serveSetup(getenv func(string) string, file string, simulated bool, log *slog.Logger) (appConfig, func(), error) {
	if !simulated {
		cfg, err := loadConfig(getenv, file)
		if err != nil {
			return appConfig{}, nil, err
		}
		cfg.Logger = log
		app, err := appFromConfig(cfg)
		return app, func() {}, err
	}
	// Said first and as a warning, so no one takes a trial for the real
	// thing: approved gateways get credentials no real service knows.
	log.Warn("backends are SIMULATED: nothing real is provisioned; Mender, DPS, IoT Hub and Vault are stand-ins in this process, on loopback, and forget everything when it exits",
		"simulated", "mender,dps,iothub,vault")
	sims, err := sandbox.Start(5 * time.Second)
	if err != nil {
		return appConfig{}, nil, err
	}
	simCfg := sims.Config()
	simCfg.Logger = log
	app, err := appFromConfig(simCfg)
	if err != nil {
		sims.Close()
		return appConfig{}, nil, err
	}
	app.SimulatedBackends = true
	return app, func() { sims.Close() }, nil
}

func loadConfig(getenv func(string) string, file string) (*config.Config, error) {
	env, err := config.NewEnv(getenv, file)
	if err != nil {
		return nil, err
	}
	return config.Load(env)
}

// appFromConfig makes the clients and carries the follow-up and webhook
// settings over to the job runner.
func appFromConfig(cfg *config.Config) (appConfig, error) {
	cl, err := cfg.Build()
	if err != nil {
		return appConfig{}, err
	}
	return appConfig{Backends: cl.Backends, Quotas: cl.Quotas, Jobs: provision.Config{Webhook: cfg.Webhook, FollowDeadline: cfg.FollowDeadline},
		OIDC: cfg.OIDC}, nil
}

// describe lists the backends in use, for the start-up log line.
func describe(backends []gatehouse.Backend) string {
	var on []string
	for _, b := range backends {
		on = append(on, b.Name())
	}
	if len(on) == 0 {
		return "none (approval hands out only the name; see README to configure backends)"
	}
	return strings.Join(on, ",")
}

// describeSSO names the single sign-on provider, for the start-up log line.
func describeSSO(c *sso.Config) string {
	if c == nil {
		return "off"
	}
	return c.Issuer
}

// logFlags are --log-level and --log-format, shared by serve and demo.
type logFlags struct{ level, format *string }

func addLogFlags(fs *flag.FlagSet, getenv func(string) string) logFlags {
	return logFlags{
		level: fs.String("log-level", envOr(getenv, "GATEHOUSE_LOG_LEVEL", "info"),
			"log `LEVEL`: debug, info, warn or error (env GATEHOUSE_LOG_LEVEL); debug adds every backend call and the job runner's work"),
		format: fs.String("log-format", envOr(getenv, "GATEHOUSE_LOG_FORMAT", "text"),
			"log `FORMAT`: text, or json for one JSON object per line, as log collectors read them (env GATEHOUSE_LOG_FORMAT)"),
	}
}

func (f logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return newLoggerAs(w, *f.level, *f.format)
}

// newLogger logs text lines to w from level on.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	return newLoggerAs(w, level, "text")
}

// newLoggerAs logs to w from level on, as text or JSON lines. Secrets never
// reach a log line at any level; a test scans a debug run for them.
func newLoggerAs(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}
