package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"gatehouse/agent"
)

// clockOffsetEnv is a test hook like GATEHOUSE_AGENT_CRASH_AT: a Go
// duration ("10m", "-10m") by which the agent's clock runs ahead of the
// machine's, so a test can run a real agent process with a wrong clock
// without setting the machine's. It is neither a flag nor in --help, and
// a process that honours it says so on stderr.
const clockOffsetEnv = "GATEHOUSE_AGENT_TEST_CLOCK_OFFSET"

// applyTestClockOffset sets cfg.Now from clockOffsetEnv, if set.
func applyTestClockOffset(cfg *agent.Config, stderr io.Writer) error {
	v := os.Getenv(clockOffsetEnv)
	if v == "" {
		return nil
	}
	off, err := time.ParseDuration(v)
	if err != nil {
		return &agent.ExitError{Code: agent.ExitConfig, Err: fmt.Errorf("%s: %w", clockOffsetEnv, err)}
	}
	fmt.Fprintf(stderr, "gatehouse-agent: %s: test hook: this agent's clock runs %s off the machine's\n", clockOffsetEnv, off)
	cfg.Now = func() time.Time { return time.Now().Add(off) }
	return nil
}
