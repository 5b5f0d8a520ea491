package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// console is a terminal as a test sees one: stdout and stderr in one
// buffer, in the order written, and a wake-up at every write.
type console struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // closed, and replaced, at each write
}

func newConsole() *console { return &console{wrote: make(chan struct{})} }

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	close(c.wrote)
	c.wrote = make(chan struct{})
	return len(p), nil
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor returns the output once it holds s, or fails the test after
// timeout.
func (c *console) waitFor(t *testing.T, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		out, wrote := c.buf.String(), c.wrote
		c.mu.Unlock()
		if strings.Contains(out, s) {
			return out
		}
		select {
		case <-wrote:
		case <-deadline.C:
			t.Fatalf("no %q in the output within %v:\n%s", s, timeout, out)
		}
	}
}

// checkBannerFits fails the test if the banner in out, from its first line
// to its last, is more than a screen of 20 lines.
func checkBannerFits(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	from, to := -1, -1
	for i, l := range lines {
		if strings.HasPrefix(l, "gatehouse demo: ") && from < 0 {
			from = i
		}
		if strings.Contains(l, bannerEnd) {
			to = i
		}
	}
	if from < 0 || to < from {
		t.Fatalf("no banner in:\n%s", out)
	}
	if n := to - from + 1; n > 20 {
		t.Errorf("the banner is %d lines, more than a screen:\n%s", n, strings.Join(lines[from:to+1], "\n"))
	}
}

// startCommand runs gatehouse with args in this process, its stdout and
// stderr both on the console returned, until stop (or the test's end)
// cancels it; stop returns the exit code.
func startCommand(t *testing.T, args ...string) (*console, func() int) {
	t.Helper()
	con := newConsole()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, con, con, func(string) string { return "" }) }()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(waitTimeout):
				t.Errorf("%v did not stop within %v of its cancel", args, waitTimeout)
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return con, stop
}

// bannerEnd is the banner's last line's end: the demo is up once it shows.
const bannerEnd = "Ctrl-C stops the demo."

var (
	urlPattern   = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)
	tokenPattern = regexp.MustCompile(`gat_[A-Za-z0-9_-]+`)
)

// The way in is on the first screen, above whatever the gateways log
// later, and it works; the banner itself fits a screen; the job queue's
// own lines are not there at info.
func TestDemoBannerOnFirstScreen(t *testing.T) {
	con, stop := startCommand(t, "demo", "--listen", "127.0.0.1:0")
	out := con.waitFor(t, bannerEnd, waitTimeout)
	lines := strings.Split(out, "\n")
	first := strings.Join(lines[:min(20, len(lines))], "\n")
	url, token := urlPattern.FindString(first), tokenPattern.FindString(first)
	if url == "" || token == "" {
		t.Fatalf("the first 20 lines hold no URL (%q) or no token (%q):\n%s", url, token, first)
	}
	if want := "export GATEHOUSE_SERVER=" + strings.TrimSuffix(url, "/") + " GATEHOUSE_TOKEN=" + token; !strings.Contains(first, want) {
		t.Errorf("the first 20 lines lack %q:\n%s", want, first)
	}
	if !strings.Contains(first, "user admin, password ") {
		t.Errorf("the first 20 lines lack the page's login:\n%s", first)
	}
	checkBannerFits(t, out)
	// Its codes are the page's, written the page's way.
	var list struct{ Devices []gatehouse.Device }
	getJSON(t, url+"api/v1/devices", token, &list)
	if len(list.Devices) != 3 {
		t.Fatalf("the token lists %d devices, want the 3 simulated gateways", len(list.Devices))
	}
	for _, d := range list.Devices {
		if code := protocol.FormatCode(d.VerificationCode); !strings.Contains(out, code) {
			t.Errorf("the banner does not show %s's code %s", d.MAC, code)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if all := con.String(); strings.Contains(all, "River client") || strings.Contains(all, "producer:") {
		t.Errorf("the job queue's own lines are logged at info:\n%s", all)
	}
}

// --gateways 0 says there are none and how to enroll one, and says nothing
// of gateways waiting.
func TestDemoNoGateways(t *testing.T) {
	con, stop := startCommand(t, "demo", "--listen", "127.0.0.1:0", "--gateways", "0")
	out := con.waitFor(t, bannerEnd, waitTimeout)
	checkBannerFits(t, out)
	url := strings.TrimSuffix(urlPattern.FindString(out), "/")
	for _, want := range []string{"no simulated gateways (--gateways 0)", "go run ./cmd/gatehouse-agent --server " + url + " --insecure-http", "--key ", "--mac "} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	for _, wrong := range []string{"gateways are waiting", "gateways wait", "simulated gateways."} {
		if strings.Contains(out, wrong) {
			t.Errorf("%q with no gateways:\n%s", wrong, out)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// demo --help describes the demo and its flags on stdout and exits 0; a
// wrong flag still exits 2, on stderr.
func TestDemoHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"demo", "--help"}, &stdout, &stderr, func(string) string { return "" })
	if code != 0 || stderr.Len() != 0 {
		t.Errorf("--help: exit %d, stderr %q", code, stderr.String())
	}
	for _, want := range []string{"Usage: gatehouse demo", "Nothing real is provisioned", "-gateways", "-faults", "-listen", "-log-level"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	code = run(t.Context(), []string{"demo", "--gatways", "2"}, &stdout, &stderr, func(string) string { return "" })
	if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "flag provided but not defined: -gatways") {
		t.Errorf("a wrong flag: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stderr.Reset()
	code = run(t.Context(), []string{"demo", "--faults", "--gateways", "0"}, &stdout, &stderr, func(string) string { return "" })
	if code != 2 || !strings.Contains(stderr.String(), "--faults") {
		t.Errorf("--faults with no gateway: exit %d, stderr %q", code, stderr.String())
	}
}

// A held port is answered with its address and a free one to pass to
// --listen, by demo and serve alike, before anything is created.
func TestBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	db := filepath.Join(t.TempDir(), "g.db")
	for _, args := range [][]string{
		{"demo", "--gateways", "0", "--listen", addr},
		{"serve", "--db", db, "--listen", addr},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), args, &stdout, &stderr, func(string) string { return "" })
		msg := strings.TrimSpace(stderr.String())
		want := regexp.MustCompile(`^gatehouse: address ` + regexp.QuoteMeta(addr) + ` is already in use; choose another with --listen (127\.0\.0\.1:\d+)$`)
		m := want.FindStringSubmatch(msg)
		if code == 0 || m == nil {
			t.Errorf("%s: exit %d, stderr %q; want non-zero and %v", args[0], code, msg, want)
			continue
		}
		if m[1] == addr {
			t.Errorf("%s suggests the busy address itself", args[0])
		}
	}
	if m, _ := filepath.Glob(db + "*"); len(m) != 0 {
		t.Errorf("serve created %v although it could not listen", m)
	}
}

// serve --simulate-backends warns first that nothing real is provisioned,
// and its serving line calls the backends simulated.
func TestServeSimulatedSaysSo(t *testing.T) {
	con, stop := startCommand(t, "serve", "--simulate-backends", "--listen", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "g.db"))
	out := con.waitFor(t, `msg="gatehouse serving"`, waitTimeout)
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	lines := strings.Split(out, "\n")
	if !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "nothing real is provisioned") {
		t.Errorf("the first line is not the warning:\n%s", out)
	}
	if !strings.Contains(out, `backends="mender,dps,iothub,vault (all simulated)"`) {
		t.Errorf("the serving line does not call the backends simulated:\n%s", out)
	}
}

// With --faults, the first gateway's Mender step fails at every attempt
// with the simulated error, while its other steps go through, until Retry
// through the API; then it succeeds and the gateway is provisioned.
func TestDemoFaultsUntilRetry(t *testing.T) {
	con, stop := startCommand(t, "demo", "--listen", "127.0.0.1:0", "--gateways", "1", "--faults")
	out := con.waitFor(t, bannerEnd, waitTimeout)
	url, token := urlPattern.FindString(out), tokenPattern.FindString(out)
	if !strings.Contains(out, "--faults: simulated Mender fails sim-1's Mender step") || !strings.Contains(out, "devices retry ID") {
		t.Errorf("the banner does not say what --faults does:\n%s", out)
	}
	checkBannerFits(t, out)
	changes := watchDevices(t, url, token)
	var list struct{ Devices []gatehouse.Device }
	changes.until(t, "the gateway enrolls", func() bool {
		getJSON(t, url+"api/v1/devices?state=pending", token, &list)
		return len(list.Devices) == 1
	})
	id := list.Devices[0].ID
	approve(t, strings.TrimSuffix(url, "/"), token, id, "gw-faulty")

	var d gatehouse.Device
	step := func(name gatehouse.StepName) gatehouse.Step {
		for _, s := range d.Steps {
			if s.Name == name {
				return s
			}
		}
		return gatehouse.Step{}
	}
	// Two failed attempts: the backend keeps failing it, not just once.
	changes.until(t, "the mender step fails twice", func() bool {
		getJSON(t, url+"api/v1/devices/"+id, token, &d)
		m := step(gatehouse.StepMender)
		return d.State == gatehouse.StateFailed && m.State == gatehouse.StepFailed && m.Attempts >= 2
	})
	if m := step(gatehouse.StepMender); !strings.Contains(m.LastError, "500 Internal Server Error: simulated failure (demo --faults)") {
		t.Errorf("the mender step's error is %q, want the simulated 500", m.LastError)
	}
	changes.until(t, "the other steps succeed", func() bool {
		getJSON(t, url+"api/v1/devices/"+id, token, &d)
		return step(gatehouse.StepDPS).State == gatehouse.StepSucceeded && step(gatehouse.StepVault).State == gatehouse.StepSucceeded
	})

	post(t, url+"api/v1/devices/"+id+"/retry", token)
	changes.until(t, "the retried mender step succeeds", func() bool {
		getJSON(t, url+"api/v1/devices/"+id, token, &d)
		return step(gatehouse.StepMender).State == gatehouse.StepSucceeded &&
			(d.State == gatehouse.StateProvisioned || d.State == gatehouse.StateConfigured)
	})
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if all := con.String(); !strings.Contains(all, "simulated fault lifted") {
		t.Errorf("the console does not say the fault was lifted:\n%s", all)
	}
}

// deviceChanges wakes a waiting test whenever the server says a device
// changed, through the stream the page listens to.
type deviceChanges struct{ wake chan struct{} }

func watchDevices(t *testing.T, url, token string) *deviceChanges {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %s", resp.Status)
	}
	r := bufio.NewReader(resp.Body)
	// Connected before the test first looks, so no change falls between.
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": connected") {
		t.Fatalf("stream: %q %v", line, err)
	}
	c := &deviceChanges{wake: make(chan struct{}, 1)}
	go func() {
		defer resp.Body.Close()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, "event: devices") {
				select {
				case c.wake <- struct{}{}:
				default:
				}
			}
		}
	}()
	return c
}

// until checks cond at once and after every change, failing the test if it
// does not hold within waitTimeout.
func (c *deviceChanges) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-c.wake:
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, waitTimeout)
		}
	}
}

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, fmt.Errorf("decode %s: %w", body, err))
	}
}

func post(t *testing.T, url, token string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %s %s", url, resp.Status, body)
	}
}
