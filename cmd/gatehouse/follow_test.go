package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/internal/keytest"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/sandbox"
)

// actionTimeout bounds each awaited line of a running command: generous
// for a loaded machine, and no test sleeps for it.
const actionTimeout = 30 * time.Second

// liveServer is a real server whose backends are the simulators.
type liveServer struct {
	app  *app
	sims *sandbox.Simulators
	env  map[string]string
}

func startLiveServer(t *testing.T) *liveServer {
	t.Helper()
	sims, a := startSimulated(t, 50*time.Millisecond, func(cfg *appConfig) {
		cfg.Jobs.RetryBase, cfg.Jobs.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	})
	return &liveServer{app: a, sims: sims, env: operatorEnv(t, a, "cli")}
}

// enroll makes a pending gateway the way an agent's first contact does.
func (s *liveServer) enroll(t *testing.T, mac string) string {
	t.Helper()
	sig, sealKey := keytest.Ed25519(t)
	st, err := s.app.svc.Enroll(context.Background(), sig, protocol.EnrollRequest{MAC: mac, SealKey: sealKey}, "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	return st.DeviceID
}

// liveCLI is a command running in the background, its output read line by
// line as it comes.
type liveCLI struct {
	lines  chan string
	code   chan int
	stderr *syncBuffer
	cancel context.CancelFunc
	seen   []string
}

func startCLI(t *testing.T, env map[string]string, args ...string) *liveCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	l := &liveCLI{lines: make(chan string, 1000), code: make(chan int, 1), stderr: &syncBuffer{}, cancel: cancel}
	go func() {
		code := run(ctx, args, w, l.stderr, func(k string) string { return env[k] })
		w.Close()
		l.code <- code
	}()
	go func() {
		defer close(l.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range l.lines { // let the command end before the server closes
		}
	})
	return l
}

// expect reads lines until one contains want, failing after actionTimeout.
func (l *liveCLI) expect(t *testing.T, want string) string {
	t.Helper()
	deadline := time.After(actionTimeout)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("output ended before a line with %q; output:\n%s\nstderr:\n%s", want, strings.Join(l.seen, "\n"), l.stderr.String())
			}
			l.seen = append(l.seen, line)
			if strings.Contains(line, want) {
				return line
			}
		case <-deadline:
			t.Fatalf("no line with %q within %v; output:\n%s\nstderr:\n%s", want, actionTimeout, strings.Join(l.seen, "\n"), l.stderr.String())
		}
	}
}

// exit waits for the command's exit code, and reads what output is left.
func (l *liveCLI) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-l.code:
		for line := range l.lines {
			l.seen = append(l.seen, line)
		}
		return code
	case <-time.After(actionTimeout):
		t.Fatalf("the command did not end within %v; output:\n%s", actionTimeout, strings.Join(l.seen, "\n"))
		return -1
	}
}

// TestApproveWait: --wait shows each step as it finishes and ends, exit 0,
// once the gateway is provisioned.
func TestApproveWait(t *testing.T) {
	t.Parallel()
	s := startLiveServer(t)
	id := s.enroll(t, "02:00:00:00:7a:01")
	cli := startCLI(t, s.env, "devices", "approve", id, "--name", "gw-wait", "--wait", "--timeout", "2m")
	cli.expect(t, "approved "+id+" as gw-wait")
	done := cli.expect(t, "gw-wait ("+id+") is provisioned")
	if code := cli.exit(t); code != 0 {
		t.Fatalf("exit %d, stderr %s", code, cli.stderr.String())
	}
	out := strings.Join(cli.seen, "\n")
	for _, step := range []string{"mender", "dps", "vault"} {
		i := strings.Index(out, "  "+step)
		if i < 0 || !strings.HasPrefix(strings.Fields(out[i:])[1], "done") || i > strings.Index(out, done) {
			t.Errorf("no %q done line before %q:\n%s", step, done, out)
		}
	}
	if cli.stderr.String() != "" {
		t.Errorf("stderr: %s", cli.stderr.String())
	}
}

// TestApproveWaitFails: a step that fails ends the wait with exit 1 and a
// message naming the step and how to go on.
func TestApproveWaitFails(t *testing.T) {
	t.Parallel()
	s := startLiveServer(t)
	s.sims.Vault.Faults.SetFailRate(1, http.StatusInternalServerError)
	id := s.enroll(t, "02:00:00:00:7a:02")
	cli := startCLI(t, s.env, "devices", "approve", id, "--name", "gw-fail", "--wait")
	cli.expect(t, "vault   failed")
	if code := cli.exit(t); code != 1 {
		t.Fatalf("exit %d, want 1; output:\n%s", code, strings.Join(cli.seen, "\n"))
	}
	errOut := cli.stderr.String()
	for _, want := range []string{"provisioning gw-fail (" + id + ") failed at the vault step", "gatehouse devices retry " + id} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q: %s", want, errOut)
		}
	}
}

// TestApproveWaitTimeout: a gateway that stays provisioning past --timeout
// ends the wait with exit 1; this server has no live updates, so the
// command polls.
func TestApproveWaitTimeout(t *testing.T) {
	d := &gatehouse.Device{ID: "d1", Name: "gw-slow", State: gatehouse.StateProvisioning,
		Steps: []gatehouse.Step{{Name: gatehouse.StepMender, State: gatehouse.StepRunning, Attempts: 1}}}
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/devices/{id}/approve": reply(200, d),
		"GET /api/v1/devices/{id}":          reply(200, d),
	})
	code, out, errOut := runCLI(t, envFor(api), "approve", "d1", "--name", "gw-slow", "--wait", "--timeout", "300ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %s, stderr %s", code, out, errOut)
	}
	if want := "gatehouse: gw-slow (d1) is not provisioned after 300ms (state provisioning; mender running)"; !strings.HasPrefix(errOut, want) {
		t.Errorf("stderr = %q, want it to start %q", errOut, want)
	}
	// With -o json, stdout is the gateway as last read, progress on stderr.
	code, out, errOut = runCLI(t, envFor(api), "approve", "d1", "--name", "gw-slow", "--wait", "--timeout", "100ms", "-o", "json")
	var got gatehouse.Device
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.ID != "d1" || code != 1 {
		t.Errorf("-o json: exit %d, stdout %q (%v)", code, out, err)
	}
	if !strings.HasPrefix(errOut, "approved d1 as gw-slow") || !strings.Contains(errOut, "not provisioned after 100ms") {
		t.Errorf("-o json: stderr %q", errOut)
	}
}

// TestListWatch: --watch prints the list again when a gateway enrolls and
// when it is approved, and ends with exit 0 on Ctrl-C.
func TestListWatch(t *testing.T) {
	t.Parallel()
	s := startLiveServer(t)
	cli := startCLI(t, s.env, "devices", "list", "--watch")
	cli.expect(t, "--- ")
	cli.expect(t, "0 of 0 devices")
	id := s.enroll(t, "02:00:00:00:7a:03")
	if row := cli.expect(t, id); !strings.Contains(row, "pending") {
		t.Errorf("new gateway's row: %q", row)
	}
	cli.expect(t, "1 of 1 devices")
	if _, err := s.app.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-watch"}); err != nil {
		t.Fatal(err)
	}
	cli.expect(t, "gw-watch")
	cli.cancel() // what Ctrl-C does to the process's context
	if code := cli.exit(t); code != 0 {
		t.Fatalf("exit %d after Ctrl-C, stderr %s", code, cli.stderr.String())
	}
}
