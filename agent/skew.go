package agent

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"gatehouse/protocol"
)

// A gateway's clock can be far off: no RTC battery, NTP not synced yet on
// first boot. The server refuses a request signed more than
// protocol.MaxSkew from its own clock with a 401, which a retry cannot
// cure, so the agent says so plainly, with both clocks, and exits
// (ExitClock) for systemd to start it again, with growing pauses, once
// the clock may have been set.

// skewMargin allows for the Date header's whole seconds and the request's
// time on the wire: a gateway whose clock is just past the limit still
// reads as off.
const skewMargin = 2 * time.Second

// ClockError is a request refused because the gateway's clock is too far
// from the server's, as the answer's Date header tells.
type ClockError struct {
	Agent  time.Time // this gateway's clock when the answer came
	Server time.Time // the server's, from its Date header
	Err    error     // the refusal
}

// Skew is how far the gateway's clock is ahead of the server's (negative:
// behind), in whole seconds as the Date header gives them: exact to a
// second or so, the time the answer took included.
func (e *ClockError) Skew() time.Duration { return e.Agent.Truncate(time.Second).Sub(e.Server) }

func (e *ClockError) Error() string {
	return fmt.Sprintf("the gateway's clock is about %s the server's (gateway %s, server %s): "+
		"signed requests more than %s off are refused; set the clock (NTP) and start the agent again",
		describeSkew(e.Skew()), e.Agent.UTC().Format(time.RFC3339), e.Server.UTC().Format(time.RFC3339), protocol.MaxSkew)
}

func (e *ClockError) Unwrap() error { return e.Err }

func describeSkew(d time.Duration) string {
	if d < 0 {
		return (-d).Round(time.Second).String() + " behind"
	}
	return d.Round(time.Second).String() + " ahead of"
}

// clockError returns err as a *ClockError when it is a 401 whose Date
// header is more than protocol.MaxSkew (less the margin) from the agent's
// clock; nil otherwise, a missing or garbled Date included.
func clockError(err error) *ClockError {
	var se *ServerError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || se.ServerTime.IsZero() {
		return nil
	}
	d := se.AgentTime.Sub(se.ServerTime)
	if d < protocol.MaxSkew-skewMargin && d > -(protocol.MaxSkew-skewMargin) {
		return nil
	}
	return &ClockError{Agent: se.AgentTime, Server: se.ServerTime, Err: err}
}

// serverTime is the answer's Date header, zero when absent or garbled.
func serverTime(h http.Header) time.Time {
	t, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t
}
