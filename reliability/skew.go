package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"gatehouse/agent"
)

func init() {
	register(Scenario{
		Name:  "skew",
		About: "real gatehouse-agent processes whose clock is 10 minutes off, either way, get one refusal and exit 8 naming the skew and the server's time; a clock 4 minutes off enrolls",
		Order: 70,
		Run:   runSkew,
	})
}

// skewCase is one agent clock and what the agent must do with it.
type skewCase struct {
	offset time.Duration
	code   int    // exit code
	says   string // in stderr
}

var skewCases = []skewCase{
	{10 * time.Minute, agent.ExitClock, "ahead of the server's"},
	{-10 * time.Minute, agent.ExitClock, "behind the server's"},
	// Within the protocol's 5 minutes: enrolls, and --once ends pending.
	{4 * time.Minute, agent.ExitPending, "still pending"},
}

// skewAgentWait bounds one agent run: a refused agent exits after one
// request, a pending one after one long poll (30 s by default).
const skewAgentWait = 2 * time.Minute

func runSkew(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	err := skew(ctx, h, size, r)
	r.Took = time.Since(start)
	return r, err
}

func skew(ctx context.Context, h *Harness, size Size, r *Result) error {
	// Short long polls, so the pending control case ends in a second.
	srv, err := h.StartServer(ctx, ServerOptions{Args: []string{"--long-poll", "1s"}})
	if err != nil {
		return err
	}
	defer srv.Kill()
	counter, err := newCountingProxy(srv.URL)
	if err != nil {
		return err
	}
	defer counter.Close()
	per := size.Pick(1, 10)
	gws, err := h.NewGateways(per*len(skewCases), 0)
	if err != nil {
		return err
	}
	for i, c := range skewCases {
		for j := range per {
			g := gws[i*per+j]
			if err := runSkewedAgent(ctx, h, counter, g, c, r); err != nil {
				return fmt.Errorf("agent %s off: %w", c.offset, err)
			}
		}
	}
	r.Note("agents %d", len(gws))
	r.Note("refused requests %d", counter.count(http.StatusUnauthorized))
	return nil
}

// runSkewedAgent runs the agent binary for g with its clock c.offset off
// and checks its exit code, its stderr, and how often it asked.
func runSkewedAgent(ctx context.Context, h *Harness, counter *countingProxy, g *Gateway, c skewCase, r *Result) error {
	ctx, cancel := context.WithTimeout(ctx, skewAgentWait)
	defer cancel()
	before := counter.total()
	cmd := exec.CommandContext(ctx, h.AgentBin, "--server", counter.URL, "--insecure-http", "--key", g.KeyPath,
		"--out", g.OutDir, "--mac", g.MAC, "--once", "--restart-cmd", "")
	cmd.Env = append(cmd.Environ(), "GATEHOUSE_AGENT_TEST_CLOCK_OFFSET="+c.offset.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	started := time.Now()
	err := cmd.Run()
	took := time.Since(started)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	requests := counter.total() - before
	r.Operations += requests
	if c.code == agent.ExitClock {
		r.Faults++
	}
	out := stderr.String()
	if code := cmd.ProcessState.ExitCode(); code != c.code {
		return fmt.Errorf("exit code %d after %v, want %d; stderr:\n%s", code, took, c.code, out)
	}
	if !strings.Contains(out, c.says) {
		return fmt.Errorf("stderr does not say %q:\n%s", c.says, out)
	}
	if c.code != agent.ExitClock {
		return nil
	}
	// One enrollment, refused, and nothing after it.
	if requests != 1 {
		return fmt.Errorf("%d requests, want 1: a clock refusal must not be retried", requests)
	}
	return checkClocks(out, started, c.offset)
}

// skewAttr is the log line's skew.
var skewAttr = regexp.MustCompile(`skew=(\S+)`)

// clockLine is the error's "(gateway T, server T)".
var clockLine = regexp.MustCompile(`\(gateway (\S+), server (\S+)\)`)

// checkClocks reads both clocks from the agent's stderr, the log line's
// and the error's, and checks they are the server's real time and the
// agent's skewed one.
func checkClocks(out string, at time.Time, offset time.Duration) error {
	for _, k := range []string{"server_time=", "agent_time="} {
		if !strings.Contains(out, k) {
			return fmt.Errorf("stderr has no %s:\n%s", k, out)
		}
	}
	// The Date header has whole seconds: the skew is right to a second or two.
	s := skewAttr.FindStringSubmatch(out)
	if s == nil {
		return fmt.Errorf("stderr has no skew=:\n%s", out)
	}
	if d, err := time.ParseDuration(s[1]); err != nil || (d-offset).Abs() > 2*time.Second {
		return fmt.Errorf("logged skew %s, want %s", s[1], offset)
	}
	m := clockLine.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("stderr does not give both clocks:\n%s", out)
	}
	agentT, err1 := time.Parse(time.RFC3339, m[1])
	serverT, err2 := time.Parse(time.RFC3339, m[2])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	// This process's clock is the server's: they run on one machine.
	if d := serverT.Sub(at).Abs(); d > 30*time.Second {
		return fmt.Errorf("server time %s is %v from the real time", m[2], d)
	}
	if d := agentT.Sub(at.Add(offset)).Abs(); d > 30*time.Second {
		return fmt.Errorf("agent time %s is %v from the real time plus %v", m[1], d, offset)
	}
	return nil
}

// countingProxy stands between the agents and the server and counts the
// requests that reach the server, by answer status.
type countingProxy struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[int]int
}

func newCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &countingProxy{counts: map[int]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		p.counts[resp.StatusCode]++
		p.mu.Unlock()
		return nil
	}
	p.Server = httptest.NewServer(rp)
	return p, nil
}

func (p *countingProxy) count(status int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[status]
}

func (p *countingProxy) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}
