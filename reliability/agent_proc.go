package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"gatehouse/agent"
)

// agentRun is one run of the real gatehouse-agent binary for a gateway.
// It reads the agent's log as it goes: the device id once pending, the
// moment the bundle arrived, the moment the files were written.
type agentRun struct {
	cmd    *exec.Cmd
	stderr io.ReadCloser
	tail   *lineTail

	mu       sync.Mutex
	killed   bool
	received time.Time // "received credentials" was logged
}

// agentLine is what one line of the agent's log says.
type agentLine struct {
	deviceID string // set on the pending line
	received bool   // the bundle arrived; the files are written next
	wrote    bool   // the files are written
}

var deviceIDAttr = regexp.MustCompile(`device_id=(\S+)`)

func parseAgentLine(line string) agentLine {
	var l agentLine
	switch {
	case strings.Contains(line, "pending: waiting"):
		if m := deviceIDAttr.FindStringSubmatch(line); m != nil {
			l.deviceID = m[1]
		}
	case strings.Contains(line, "received credentials"):
		l.received = true
	case strings.Contains(line, "wrote credentials"):
		l.wrote = true
	}
	return l
}

// startAgent starts the binary for g against server, with no restart
// commands: the scenario is about the files.
func startAgent(ctx context.Context, bin, server string, g *Gateway) (*agentRun, error) {
	cmd := exec.CommandContext(ctx, bin, "--server", server, "--insecure-http", "--key", g.KeyPath,
		"--out", g.OutDir, "--mac", g.MAC, "--no-restart")
	cmd.Env = append(os.Environ(), "GATEHOUSE_SERVER=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gatehouse-agent: %w", err)
	}
	return &agentRun{cmd: cmd, stderr: stderr, tail: &lineTail{}}, nil
}

// watch calls on for each line of the agent's log until the log ends.
func (a *agentRun) watch(on func(agentLine)) {
	sc := bufio.NewScanner(a.stderr)
	for sc.Scan() {
		a.tail.add(sc.Text())
		l := parseAgentLine(sc.Text())
		if l.received {
			a.mu.Lock()
			a.received = time.Now()
			a.mu.Unlock()
		}
		on(l)
	}
	io.Copy(io.Discard, a.stderr)
}

// kill sends SIGKILL; it reports whether the process was still there to
// get it.
func (a *agentRun) kill() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return false
	}
	a.killed = true
	return true
}

// wait waits for the process; killed says whether it died of our SIGKILL.
func (a *agentRun) wait() (killed bool, err error) {
	err = a.cmd.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	var ee *exec.ExitError
	if a.killed && errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("gatehouse-agent: %w; its log ends:\n%s", err, a.tail.String())
	}
	return false, nil
}

// lineTail keeps the last lines of a log for failure reports.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 8

func (t *lineTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// killPhase says where in its work a killed agent was, from what it left
// in its output directory.
func killPhase(g *Gateway) string {
	entries, _ := os.ReadDir(g.OutDir)
	var temps, files int
	for _, e := range entries {
		switch {
		case strings.Contains(e.Name(), ".tmp-"):
			temps++
		case e.Name() == agent.FileDeviceName:
			return "after device-name"
		default:
			files++
		}
	}
	switch {
	case temps > 0:
		return "mid-write"
	case files > 0:
		return "between files"
	}
	return "before the first file"
}
