package agent

import (
	"errors"
	"fmt"
)

// Exit codes of gatehouse-agent. Scripts and systemd units branch on them, so
// they are part of the contract: add new ones, never renumber.
const (
	ExitOK        = 0 // provisioned: files written, services restarted
	ExitFailure   = 1 // anything not covered below
	ExitConfig    = 2 // bad flags or configuration (e.g. missing --server)
	ExitKey       = 3 // device key missing, unreadable or of an unsupported type
	ExitServer    = 4 // server refused us permanently, or (with --once) was unreachable
	ExitDismissed = 5 // an operator dismissed or decommissioned this gateway
	ExitPending   = 6 // --once and the gateway is not provisioned yet
	ExitRestart   = 7 // files written, but a restart command failed
	ExitClock     = 8 // the server refused our signatures: this gateway's clock is too far off
)

// ExitError is an error that tells the process how to exit.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit code %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// exitErrorf returns an *ExitError with a formatted (and %w-wrapping) message.
func exitErrorf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// ExitCode maps err to the process exit code: 0 for nil, the code of the
// first *ExitError in the chain, ExitFailure otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailure
}
