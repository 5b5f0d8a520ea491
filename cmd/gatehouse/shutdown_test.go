package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/internal/keytest"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/simulate"
)

// TestServeShutsDownCleanly: serve, told to stop (as by SIGTERM), stops
// and exits 0, logging no error.
func TestServeShutsDownCleanly(t *testing.T) {
	t.Parallel()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs, code := serveUntilServing(t, ctx, "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "g.db"), "--shutdown-grace", "3s")
	stop()
	select {
	case c := <-code:
		if c != 0 || strings.Contains(logs.String(), "level=ERROR") {
			t.Fatalf("clean shutdown exited %d: %s", c, logs)
		}
		if !strings.Contains(logs.String(), "grace=3s") {
			t.Errorf("--shutdown-grace 3s not in the shutdown log: %s", logs)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("serve did not exit after its context ended: %s", logs)
	}
}

// TestShutdownGraceRefused: a negative or malformed grace is a usage error,
// found before anything starts.
func TestShutdownGraceRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		env  string
	}{{args: []string{"--shutdown-grace", "-1s"}}, {env: "soon"}} {
		var stderr bytes.Buffer
		getenv := func(k string) string {
			if k == "GATEHOUSE_SHUTDOWN_GRACE" {
				return c.env
			}
			return ""
		}
		args := append([]string{"--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "g.db")}, c.args...)
		if code := runServe(context.Background(), args, &bytes.Buffer{}, &stderr, getenv); code != 2 || !strings.Contains(strings.ToLower(stderr.String()), "grace") {
			t.Errorf("serve %v with GATEHOUSE_SHUTDOWN_GRACE=%q: exit %d, %s; want 2 naming the grace", c.args, c.env, code, stderr.String())
		}
	}
}

// TestServeShutdownFailureExitCode: a step that ignores its cancellation
// keeps the job runner from stopping within grace plus the cancel wait;
// serve says so once in its log and exits 1, so systemd and scripts see
// that the stop was not clean.
func TestServeShutdownFailureExitCode(t *testing.T) {
	t.Parallel()
	dps := &stubbornDPS{DPS: simulate.NewDPS("0ne00TEST"), entered: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(dps.release) })
	var logs syncBuffer
	cfg := appConfig{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "g.db"), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Backends: []gatehouse.Backend{azure.NewDPSBackend(dps)}, Jobs: provision.Config{PollInterval: 10 * time.Millisecond},
		ShutdownGrace: 50 * time.Millisecond, shutdownCancelWait: 200 * time.Millisecond}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	apps, code := make(chan *app, 1), make(chan int, 1)
	go func() { code <- serveUntil(ctx, cfg, &logs, func(a *app) { apps <- a }) }()
	var a *app
	select {
	case a = <-apps:
	case c := <-code:
		t.Fatalf("serve exited %d before serving: %s", c, logs.String())
	case <-time.After(waitTimeout):
		t.Fatal("serve did not start")
	}
	approveOne(t, a.svc, "gw-stubborn")
	select {
	case <-dps.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the dps step never started")
	}
	stop()
	select {
	case c := <-code:
		if c != 1 {
			t.Fatalf("shutdown with a step that would not stop exited %d; want 1: %s", c, logs.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("serve did not exit: %s", logs.String())
	}
	// Only serve's own line is counted: River's completer, still running
	// with the stuck step, may log that it found the database closed.
	out := logs.String()
	if n := strings.Count(out, `msg="shutdown failed"`); n != 1 || !strings.Contains(out, "stop the job runner") {
		t.Fatalf("want the failure logged once, naming the job runner; got %d times: %s", n, out)
	}
}

// approveOne enrolls a gateway with a fresh key, approves it and returns
// its id.
func approveOne(t *testing.T, svc *provision.Service, name string) string {
	t.Helper()
	ctx := context.Background()
	sig, sealKey := keytest.Ed25519(t)
	st, err := svc.Enroll(ctx, sig, protocol.EnrollRequest{MAC: "02:00:00:00:5d:01", SealKey: sealKey}, "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "op", st.DeviceID, provision.Approval{Name: name}); err != nil {
		t.Fatal(err)
	}
	return st.DeviceID
}

// stubbornDPS holds enrollment creation until release, deaf to its
// context, as a backend call stuck in a kernel or a library might be.
type stubbornDPS struct {
	gatehouse.DPS
	entered chan struct{}
	release chan struct{}
}

func (d *stubbornDPS) CreateEnrollment(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	select {
	case d.entered <- struct{}{}:
	default:
	}
	<-d.release
	return d.DPS.CreateEnrollment(ctx, e)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// watchedLog is a syncBuffer that closes seen once want is written.
type watchedLog struct {
	syncBuffer
	want string
	once sync.Once
	seen chan struct{}
}

func (w *watchedLog) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if strings.Contains(w.syncBuffer.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *watchedLog) String() string { return w.syncBuffer.String() }

// TestSecondServeRefused: while one serve has a SQLite file, a second on
// the same file (another port) exits 1 saying another process serves it,
// before it answers anything: its nonces would not be the first's.
func TestSecondServeRefused(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "g.db")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs, code := serveUntilServing(t, ctx, "--listen", "127.0.0.1:0", "--db", db)
	var stderr bytes.Buffer
	if c := runServe(context.Background(), []string{"--listen", "127.0.0.1:0", "--db", db}, &bytes.Buffer{}, &stderr, func(string) string { return "" }); c != 1 ||
		!strings.Contains(stderr.String(), "another gatehouse process serves this database") {
		t.Fatalf("second serve: exit %d, %s; want 1 naming the other process", c, stderr.String())
	}
	stop()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("first serve exited %d: %s", c, logs)
		}
	case <-time.After(waitTimeout):
		t.Fatal("first serve did not exit")
	}
}

// serveUntilServing runs serve with args until ctx ends and waits until it
// logs that it serves; code gets its exit code.
func serveUntilServing(t *testing.T, ctx context.Context, args ...string) (logs *watchedLog, code <-chan int) {
	t.Helper()
	logs = &watchedLog{want: "gatehouse serving", seen: make(chan struct{})}
	exit := make(chan int, 1)
	go func() { exit <- runServe(ctx, args, &bytes.Buffer{}, logs, func(string) string { return "" }) }()
	select {
	case <-logs.seen:
	case c := <-exit:
		t.Fatalf("serve exited %d before serving: %s", c, logs)
	case <-time.After(waitTimeout):
		t.Fatalf("serve did not start: %s", logs)
	}
	return logs, exit
}
