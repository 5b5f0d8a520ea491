// Package server is gatehouse's HTTP face: the operator REST API, the signed
// device API with its long poll, health probes and the OpenAPI document.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"gatehouse/metrics"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// MaxBodyBytes bounds every request body; device and operator requests are
// small, and a bound keeps a flood from costing memory.
const MaxBodyBytes = 64 << 10

// DefaultLongPoll is how long a device's wait is held unless LongPoll says
// otherwise: well under the idle timeouts of common proxies (60 s).
const DefaultLongPoll = 30 * time.Second

// Server serves gatehouse over HTTP.
type Server struct {
	// Addr is the listen address; ":0" picks a free port (see URL).
	Addr string
	// LongPoll is how long a device wait is held; default 30 s.
	LongPoll time.Duration
	// Logger receives access and error logs; default discards.
	Logger *slog.Logger
	// TLS, when set, makes the server speak HTTPS only, with this
	// certificate (reloadable while serving) and HSTS on every response.
	TLS *Certificate
	// SSO, when set, is offered on the login page beside passwords.
	SSO SSO
	// StreamRecheck is how often an open event stream checks that its
	// caller may still read; default 25 s.
	StreamRecheck time.Duration
	// DeviceRate and DeviceBurst are the token bucket each source address
	// (IPv4 address, IPv6 /64) gets on the device API; default
	// DefaultDeviceRate and DefaultDeviceBurst. rate.Inf turns the limit
	// off, for when a proxy in front limits instead: behind a proxy every
	// request comes from the proxy's address.
	DeviceRate  rate.Limit
	DeviceBurst int
	// LoginRate and LoginBurst bound login attempts per source address, so
	// passwords and tokens cannot be guessed at the speed of the hash;
	// default one every 6 s after a burst of 10. rate.Inf turns it off.
	LoginRate  rate.Limit
	LoginBurst int
	// Metrics, when set, is served at /metrics and told of every request
	// and held long poll; without it /metrics answers 404.
	Metrics *metrics.Metrics
	// SimulatedBackends, when true, tells the operator page (in the
	// session) that the backends are simulators: it says so in its header,
	// so a trial is never taken for a real rollout.
	SimulatedBackends bool
	// AfterApproveCommit is a test hook, nil in production: it is called
	// with the device's id once an approval through the REST API has
	// committed and before its answer is written, so a crash test can kill
	// the process exactly where the caller cannot know the approval took.
	// The gatehouse binary sets it only from GATEHOUSE_TEST_KILL_AFTER_APPROVE.
	AfterApproveCommit func(deviceID string)

	svc      *provision.Service
	verifier *protocol.Verifier
	ln       net.Listener
	srv      *http.Server
	// closing is cancelled by Close, to end event streams and long polls.
	closing      context.Context
	startClosing context.CancelFunc
	closeOnce    sync.Once
	authWarn     *authLimiter
	devLimit     *sourceLimiter // built by Handler from DeviceRate and DeviceBurst
	loginLimit   *sourceLimiter // built by Handler from LoginRate and LoginBurst
	devSlots     chan struct{}  // see deviceSlots
	devQueued    atomic.Int64   // device requests waiting for a slot; see maxDeviceQueue
}

// New returns a Server over svc. Call Open to listen.
func New(svc *provision.Service) *Server {
	closing, startClosing := context.WithCancel(context.Background())
	return &Server{
		closing:      closing,
		startClosing: startClosing,
		Addr:         ":8080",
		LongPoll:     DefaultLongPoll,
		svc:          svc,
		// Nonces live in the database, so replays are refused across
		// restarts and replicas, not only within this process.
		verifier: &protocol.Verifier{Nonces: svc, Sessions: svc.Sessions()},
		authWarn: &authLimiter{now: time.Now, sources: map[string]*authWindow{}},

		DeviceRate:  DefaultDeviceRate,
		DeviceBurst: DefaultDeviceBurst,
		LoginRate:   DefaultLoginRate,
		LoginBurst:  DefaultLoginBurst,
	}
}

// Open listens synchronously, so a busy port is an error here, then serves in
// the background.
func (s *Server) Open() error {
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := checkDeviceLimit(s.DeviceRate, s.DeviceBurst); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long polls hold responses open; leave room beyond them.
		WriteTimeout: s.LongPoll + 30*time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := s.serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("server stopped", "err", err)
		}
	}()
	return nil
}

// serve runs the HTTP server on ln, over TLS when configured. ServeTLS
// with empty file names takes the certificate from TLSConfig and keeps
// HTTP/2 on.
func (s *Server) serve(ln net.Listener) error {
	if s.TLS == nil {
		return s.srv.Serve(ln)
	}
	s.srv.TLSConfig = s.TLS.tlsConfig()
	return s.srv.ServeTLS(ln, "", "")
}

// URL is the base URL the server listens on, with a loopback host when it
// listens on all interfaces.
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if s.TLS != nil {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close stops accepting and waits for requests in flight until ctx is done;
// then it closes the connections still open rather than leave them to a
// process about to close its database.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	// Closing twice (a signal, then a deferred close) is harmless.
	s.closeOnce.Do(s.startClosing)
	err := s.shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

// shutdownSlice is how long one http.Server.Shutdown call may wait; see
// shutdown.
const shutdownSlice = 50 * time.Millisecond

// shutdown is http.Server.Shutdown with a finer poll. Shutdown looks for
// finished connections at intervals doubling up to 500 ms, so connections
// that finish just after a look wait up to that long more: with 1,000 held
// long polls answered over most of a second on a loaded machine, that was
// a third of the whole shutdown in BenchmarkShutdown. Calling it again
// restarts its looks at 1 ms; the listeners are closed by the first call.
func (s *Server) shutdown(ctx context.Context) error {
	for {
		slice, cancel := context.WithTimeout(ctx, shutdownSlice)
		err := s.srv.Shutdown(slice)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
	}
}
