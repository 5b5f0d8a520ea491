package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/client"
	"gatehouse/sandbox"
)

// Harness holds what every scenario shares: a scratch directory, the
// gatehouse and gatehouse-agent binaries built from this checkout, and
// where progress is written.
type Harness struct {
	Dir       string    // this scenario's scratch directory
	Bin       string    // the gatehouse binary
	AgentBin  string    // the gatehouse-agent binary
	Progress  io.Writer // progress lines, for a person watching a long run
	ServerEnv []string  // environment every serve process of this scenario gets
	removeDir bool
}

// NewHarness builds both binaries into dir (a new temporary directory when
// dir is empty). Building, not `go run`, so that a SIGKILL reaches the
// server itself and not a go command in front of it.
func NewHarness(ctx context.Context, dir string, progress io.Writer) (*Harness, error) {
	h := &Harness{Dir: dir, Progress: progress}
	if dir == "" {
		d, err := os.MkdirTemp("", "gatehouse-reliability-")
		if err != nil {
			return nil, err
		}
		h.Dir, h.removeDir = d, true
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	h.Bin, h.AgentBin = filepath.Join(h.Dir, "bin", "gatehouse"), filepath.Join(h.Dir, "bin", "gatehouse-agent")
	fmt.Fprintln(progress, "reliability: building gatehouse and gatehouse-agent")
	for bin, pkg := range map[string]string{h.Bin: "gatehouse/cmd/gatehouse", h.AgentBin: "gatehouse/cmd/gatehouse-agent"} {
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("build %s: %w\n%s", pkg, err, out)
		}
	}
	return h, nil
}

// Sub is a harness for one scenario: the same binaries, a directory of
// its own.
func (h *Harness) Sub(name string) *Harness {
	sub := *h
	sub.Dir, sub.removeDir = filepath.Join(h.Dir, name), false
	os.MkdirAll(sub.Dir, 0o700)
	return &sub
}

// Close removes the scratch directory if the harness made it.
func (h *Harness) Close() error {
	if h.removeDir {
		return os.RemoveAll(h.Dir)
	}
	return nil
}

// Backends are the four simulators, in this process, so they outlive every
// server process a scenario kills, and EnvFile, the serve config that
// points at them.
type Backends struct {
	*sandbox.Simulators
	EnvFile string
}

// StartBackends starts the simulators; DPS assigns a registered gateway to
// the hub after assignDelay.
func (h *Harness) StartBackends(assignDelay time.Duration) (*Backends, error) {
	sims, err := sandbox.Start(assignDelay)
	if err != nil {
		return nil, err
	}
	env, err := sims.WriteEnvFile(h.Dir)
	if err != nil {
		sims.Close()
		return nil, err
	}
	return &Backends{Simulators: sims, EnvFile: env}, nil
}

// ServerOptions say how to run `gatehouse serve`.
type ServerOptions struct {
	DB     string   // SQLite path or postgres:// URL; default a file in the scratch directory
	Config string   // the serve config file (Backends.EnvFile); empty: no backends
	Args   []string // further serve flags, e.g. --workers 8
	Env    []string // further environment, KEY=VALUE
}

var errRunning = errors.New("server already running")

// Server is one `gatehouse serve` process that can be killed and started
// again on the same database and address.
type Server struct {
	URL  string // http://127.0.0.1:PORT, the same across restarts
	DB   string
	Log  string // the file every start's stderr is appended to
	opts ServerOptions
	env  []string
	bin  string
	addr string

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	requested *atomic.Bool // the running process was told to end by Kill or Stop
	starts    int
	onOwnExit func(start int)
}

// StartServer starts gatehouse serve and waits until it is ready.
func (h *Harness) StartServer(ctx context.Context, opts ServerOptions) (*Server, error) {
	if opts.DB == "" {
		opts.DB = filepath.Join(h.Dir, "gatehouse.db")
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + addr, DB: opts.DB, Log: filepath.Join(h.Dir, "serve.log"), opts: opts, env: h.ServerEnv, bin: h.Bin, addr: addr}
	return s, s.Start(ctx)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start starts the process (again, after Kill or Stop) and waits until
// /readyz answers 200.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errRunning
	}
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	s.starts++
	fmt.Fprintf(logf, "---- start %d at %s\n", s.starts, time.Now().UTC().Format(time.RFC3339Nano))
	args := append([]string{"serve", "--listen", s.addr, "--db", s.DB}, s.opts.Args...)
	if s.opts.Config != "" {
		args = append(args, "--config", s.opts.Config)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(append(os.Environ(), s.env...), s.opts.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start gatehouse serve: %w", err)
	}
	exited, requested, start, onOwn := make(chan struct{}), &atomic.Bool{}, s.starts, s.onOwnExit
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
		if !requested.Load() && onOwn != nil {
			onOwn(start)
		}
	}()
	s.cmd, s.exited, s.requested = cmd, exited, requested
	return s.waitReady(ctx, exited)
}

// Restart starts the process unless one is running, and says whether it
// did: after a death, whoever restarts first (a killer, a watcher of the
// process's own exits) wins and the other has nothing to do.
func (s *Server) Restart(ctx context.Context) (bool, error) {
	s.mu.Lock()
	running := s.cmd != nil && !closed(s.exited)
	if s.cmd != nil && !running {
		s.cmd = nil // died on its own; Kill was never called
	}
	s.mu.Unlock()
	if running {
		return false, nil
	}
	err := s.Start(ctx)
	if errors.Is(err, errRunning) {
		return false, nil // started meanwhile by the other
	}
	return err == nil, err
}

// OnOwnExit has f called, from its own goroutine, with the start number of
// each process started from now on that ends without Kill or Stop; nil
// stops it.
func (s *Server) OnOwnExit(f func(start int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onOwnExit = f
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitReady polls /readyz, each poll with its own deadline, until it
// answers 200, the process exits, or a minute passes.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.ready(ctx) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("gatehouse serve exited before it was ready; its log:\n%s", s.LogTail(20))
		case <-ctx.Done():
			return fmt.Errorf("gatehouse serve not ready: %w; its log:\n%s", ctx.Err(), s.LogTail(20))
		case <-tick.C:
		}
	}
}

func (s *Server) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() error { return s.signal(os.Kill) }

// Stop sends SIGTERM, the orderly shutdown, and waits for the exit.
func (s *Server) Stop() error { return s.signal(os.Interrupt) }

func (s *Server) signal(sig os.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.requested.Store(true)
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-s.exited
	s.cmd = nil
	return nil
}

// Pid is the running process's id, 0 when none runs.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Starts is how many times the process was started.
func (s *Server) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// LogTail is the last n lines of the server's log, for failure reports.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(s.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// OperatorClient makes an operator token on the server's database (the
// CLI's --db path, which works before any server runs) and returns a
// REST client that uses it.
func (s *Server) OperatorClient(ctx context.Context, name string) (*client.Client, error) {
	out, err := exec.CommandContext(ctx, s.bin, "tokens", "create", "--db", s.DB, "--name", name, "--role", "operator").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("tokens create: %w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("tokens create: %w", err)
	}
	return client.New(s.URL, strings.TrimSpace(string(out)))
}
