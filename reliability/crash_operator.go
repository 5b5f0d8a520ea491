package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse"
	"gatehouse/client"
)

// decision is one operator decision about one gateway: approve it under
// name, or dismiss it. requestIDs are the X-Request-Id of every call made
// for it, so the audit entry can be traced to the call that made it.
type decision struct {
	gw         *Gateway
	deviceID   string
	name       string // empty for a dismissal
	dismiss    bool
	requestIDs []string
	byCheck    bool // the call's answer was lost; a look at the device showed it done
}

// operator is a person at the REST API. When a call gets no answer because
// the server died, it waits until the server answers again and looks at the
// device before asking again, as someone reloading the page would: asking
// blindly could decide twice.
type operator struct {
	c       *client.Client
	retried atomic.Int64 // calls repeated after a look showed them not done
	checked atomic.Int64 // calls whose answer was lost but that had happened
	busy    atomic.Int64 // calls the server answered 503, try again later
}

// tokenFor makes an API token on srv's database with the CLI, as
// Server.OperatorClient does; the audit log needs an admin's.
func tokenFor(ctx context.Context, srv *Server, bin, name, role string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "tokens", "create", "--db", srv.DB, "--name", name, "--role", role).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("tokens create: %w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("tokens create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// newOperator is an operator with its own token whose client notes each
// request's id (see requestIDs).
func newOperator(ctx context.Context, h *Harness, srv *Server, name, role string) (*operator, error) {
	tok, err := tokenFor(ctx, srv, h.Bin, name, role)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: idRecorder{http.DefaultTransport}}
	c, err := client.New(srv.URL, tok, client.WithHTTPClient(hc), client.WithTimeout(15*time.Second))
	if err != nil {
		return nil, err
	}
	return &operator{c: c}, nil
}

type idsKey struct{}

// idRecorder appends each request's X-Request-Id to the list its context
// carries, if any.
type idRecorder struct{ base http.RoundTripper }

func (t idRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if ids, ok := r.Context().Value(idsKey{}).(*idList); ok {
		ids.add(r.Header.Get("X-Request-Id"))
	}
	return t.base.RoundTrip(r)
}

type idList struct {
	mu  sync.Mutex
	ids []string
}

func (l *idList) add(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = append(l.ids, id)
}

// decideTimeout bounds one decision, however many restarts it rides out.
const decideTimeout = 3 * time.Minute

// decide makes d, repeating it after a lost answer only once a look at the
// device shows it did not happen.
func (o *operator) decide(ctx context.Context, d *decision) error {
	ctx, cancel := context.WithTimeout(ctx, decideTimeout)
	defer cancel()
	ids := &idList{}
	defer func() { d.requestIDs = ids.ids }()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			o.retried.Add(1)
		}
		err := o.call(context.WithValue(ctx, idsKey{}, ids), d)
		if err == nil {
			return nil
		}
		if refused(err) {
			return fmt.Errorf("%s %s: refused: %w", d.verb(), d.gw.MAC, err)
		}
		if busy(err) {
			// The server answered that it cannot decide now (a backend's
			// quota is spent for a while): wait as a person would.
			o.busy.Add(1)
			if err := sleepCtx(ctx, busyPause(attempt)); err != nil {
				return fmt.Errorf("%s %s: %w", d.verb(), d.gw.MAC, err)
			}
		}
		done, err := o.happened(ctx, d)
		if err != nil {
			return err
		}
		if done {
			d.byCheck = true
			o.checked.Add(1)
			return nil
		}
	}
}

// busy says the server answered 503: it is up but cannot decide now.
func busy(err error) bool {
	var ge *gatehouse.Error
	return errors.As(err, &ge) && ge.Code == gatehouse.EUNAVAILABLE
}

// busyPause grows from half a second to four, with jitter.
func busyPause(attempt int) time.Duration {
	ceil := min(500*time.Millisecond<<min(attempt, 3), 4*time.Second)
	return ceil/2 + rand.N(ceil/2)
}

func (o *operator) call(ctx context.Context, d *decision) error {
	if d.dismiss {
		_, err := o.c.Dismiss(ctx, d.deviceID)
		return err
	}
	_, err := o.c.Approve(ctx, d.deviceID, d.name, nil)
	return err
}

func (d *decision) verb() string {
	if d.dismiss {
		return "dismiss"
	}
	return "approve"
}

// refused says the server answered and said no: repeating would not help.
// A server that is starting or failing (503, 500) did not answer the
// question, nor did a proxy's error page.
func refused(err error) bool {
	var ge *gatehouse.Error
	if !errors.As(err, &ge) {
		return false
	}
	switch ge.Code {
	case gatehouse.EUNAVAILABLE, gatehouse.EINTERNAL:
		return false
	}
	return true
}

// happened waits until the server answers and says whether d took effect.
func (o *operator) happened(ctx context.Context, d *decision) (bool, error) {
	dev, err := o.device(ctx, d.deviceID)
	if err != nil {
		return false, fmt.Errorf("%s %s: look after a lost answer: %w", d.verb(), d.gw.MAC, err)
	}
	switch {
	case dev.State == gatehouse.StatePending:
		return false, nil
	case d.dismiss && dev.State == gatehouse.StateDismissed:
		return true, nil
	case !d.dismiss && dev.State != gatehouse.StateDismissed && dev.Name == d.name:
		return true, nil
	}
	return false, fmt.Errorf("%s %s: after a lost answer the device is %s named %q", d.verb(), d.gw.MAC, dev.State, dev.Name)
}

// device reads one device, polling while the server is down.
func (o *operator) device(ctx context.Context, id string) (*gatehouse.Device, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		dev, err := o.c.Device(ctx, id)
		if err == nil || refused(err) {
			return dev, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}
