package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
)

// killAfterApproveEnv is a test hook, like the agent's
// GATEHOUSE_AGENT_TEST_CLOCK_OFFSET: a fraction in (0, 1] of the approvals
// made through the REST API after whose commit serve SIGKILLs itself,
// before the answer is written. The reliability suite's crash scenario
// sets it to show that an operator who gets no answer finds the approval
// done and does not make it twice. It is neither a flag nor in --help, it
// is off unless set, and a process that honours it says so on stderr, at
// start and before each kill.
const killAfterApproveEnv = "GATEHOUSE_TEST_KILL_AFTER_APPROVE"

// killAfterApproveLine starts the line written before each such kill; the
// reliability suite counts them in the server's log.
const killAfterApproveLine = "gatehouse: " + killAfterApproveEnv + ": test hook: SIGKILL after the approval commit of "

// killAfterApprove reads killAfterApproveEnv and returns the hook for
// server.Server.AfterApproveCommit, nil when it is unset. chance draws in
// [0, 1) and kill ends the process; the tests pass their own.
func killAfterApprove(getenv func(string) string, stderr io.Writer, chance func() float64, kill func()) (func(string), error) {
	v := getenv(killAfterApproveEnv)
	if v == "" {
		return nil, nil
	}
	p, err := strconv.ParseFloat(v, 64)
	if err != nil || !(p > 0 && p <= 1) {
		return nil, fmt.Errorf("%s=%q: want a fraction above 0 and at most 1", killAfterApproveEnv, v)
	}
	fmt.Fprintf(stderr, "gatehouse: %s: test hook: this server kills itself after %g of its approvals commit\n", killAfterApproveEnv, p)
	return func(deviceID string) {
		if chance() >= p {
			return
		}
		// Written before the kill, to stderr, which is unbuffered: the
		// line is in the log when the process is gone.
		fmt.Fprintf(stderr, "%s%s\n", killAfterApproveLine, deviceID)
		kill()
	}, nil
}

// killSelf SIGKILLs this process: no deferred call, no shutdown, no answer.
func killSelf() {
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		os.Exit(137) // as abrupt, the status a SIGKILL gives
	}
	// The signal may land a moment after Kill returns; nothing more of
	// this request may run meanwhile.
	select {}
}

// chance is the production draw for killAfterApprove.
func chance() float64 { return rand.Float64() }
