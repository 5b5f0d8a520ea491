package gatehouse

import (
	"errors"
	"fmt"
	"time"
)

// Application error codes. The HTTP layer maps each to one status in one place.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ETOOLARGE     = "too_large"
	EUNAVAILABLE  = "unavailable"
	ERATELIMITED  = "rate_limited"
	// EGONE: the caller's device was decommissioned; asking again will
	// not help.
	EGONE = "gone"
)

// Error is an error whose message is safe to show to the caller.
// Anything that is not an *Error is reported to callers as an internal error.
type Error struct {
	Code    string
	Message string
	// RetryAfter, when set, is how long the caller should wait before
	// trying again; the HTTP layer sends it as Retry-After.
	RetryAfter time.Duration
	// Conflict, when set, names the gateway that already holds what the
	// caller asked for (a name), so a page can link to it rather than
	// leave the operator to search for an id in the message.
	Conflict *Conflict
}

// Conflict is the other gateway behind an ECONFLICT: what an operator
// knows it by. Nothing secret goes here; it is sent to the caller.
type Conflict struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	MAC  string `json:"mac"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// WithRetryAfter sets how long the caller should wait before trying again.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	e.RetryAfter = d
	return e
}

// ErrorRetryAfter returns the retry hint of the first *Error in err's chain,
// or 0 when there is none.
func ErrorRetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorConflict returns the other gateway named by the first *Error in
// err's chain, or nil.
func ErrorConflict(err error) *Conflict {
	var e *Error
	if errors.As(err, &e) {
		return e.Conflict
	}
	return nil
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message that leaks nothing.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
