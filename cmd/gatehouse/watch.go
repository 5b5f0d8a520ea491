package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/client"
)

// stepOrder is the order provisioning runs a gateway's steps in: the
// backends' own steps as config registers them (config/registry.go: Mender,
// DPS, Vault; the IoT Hub backend has none), queued in that order at the
// approval, then the IoT Hub follow-up once the gateway is provisioned.
// The page lists them the same way (ui/static/device.js).
var stepOrder = []gatehouse.StepName{gatehouse.StepMender, gatehouse.StepDPS, gatehouse.StepVault, gatehouse.StepHub}

// orderedSteps sorts steps into stepOrder; a step it does not know goes
// last, in the order the server gave.
func orderedSteps(steps []gatehouse.Step) []gatehouse.Step {
	rank := func(n gatehouse.StepName) int {
		if i := slices.Index(stepOrder, n); i >= 0 {
			return i
		}
		return len(stepOrder)
	}
	out := slices.Clone(steps)
	slices.SortStableFunc(out, func(a, b gatehouse.Step) int { return rank(a.Name) - rank(b.Name) })
	return out
}

// stepWord says how a step stands in the page's words (stepWord in
// ui/static/format.js): a running step with a "waiting: ..." note is the
// IoT Hub follow-up waiting for DPS to assign the gateway, not a backend
// call in progress.
func stepWord(s gatehouse.Step) string {
	if s.State == gatehouse.StepRunning && strings.HasPrefix(s.LastError, "waiting") {
		return "waiting"
	}
	switch s.State {
	case gatehouse.StepPending:
		return "queued"
	case gatehouse.StepSucceeded:
		return "done"
	}
	return string(s.State) // running, failed
}

// pollEvery is how often a wait or a watch reads the server when it cannot
// hear its live updates (an older server, or a proxy that buffers them).
const pollEvery = 2 * time.Second

// defaultWaitTimeout bounds approve --wait: well past a normal
// provisioning, short of leaving a script hanging for a stuck backend.
const defaultWaitTimeout = 10 * time.Minute

// openChanges opens the server's live updates, or returns nil when it
// cannot; the caller then polls.
func openChanges(ctx context.Context, c *client.Client) *client.Changes {
	ch, err := c.WatchChanges(ctx)
	if err != nil {
		return nil
	}
	return ch
}

// changeWaiter wakes its caller on every change the server reports, or
// every pollEvery without live updates (also once they break off).
type changeWaiter struct {
	next <-chan client.Change
	poll *time.Ticker
}

func newChangeWaiter(ctx context.Context, changes *client.Changes) *changeWaiter {
	w := &changeWaiter{}
	if changes == nil {
		w.poll = time.NewTicker(pollEvery)
		return w
	}
	next := make(chan client.Change)
	w.next = next
	go func() {
		defer close(next)
		for {
			ch, err := changes.Next()
			if err != nil {
				return
			}
			select {
			case next <- ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return w
}

// wait returns the next change, or All when polling; ctx's error when it
// ends first.
func (w *changeWaiter) wait(ctx context.Context) (client.Change, error) {
	if w.poll == nil {
		select {
		case ch, ok := <-w.next:
			if ok {
				return ch, nil
			}
			w.poll = time.NewTicker(pollEvery) // the stream ended: poll from now on
		case <-ctx.Done():
			return client.Change{}, ctx.Err()
		}
	}
	select {
	case <-w.poll.C:
		return client.Change{All: true}, nil
	case <-ctx.Done():
		return client.Change{}, ctx.Err()
	}
}

func (w *changeWaiter) stop() {
	if w.poll != nil {
		w.poll.Stop()
	}
}

// errWaitTimeout ends a wait that ran out of time.
var errWaitTimeout = errors.New("wait timed out")

// waitProvisioned follows gateway d after its approval, writing each step
// to w as it finishes, until the gateway is provisioned or configured
// (nil), fails or leaves provisioning (an error naming why), or timeout
// passes. It returns the gateway as last read.
func waitProvisioned(ctx context.Context, c *client.Client, changes *client.Changes, d *gatehouse.Device, timeout time.Duration, w io.Writer) (*gatehouse.Device, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errWaitTimeout)
	defer cancel()
	waiter := newChangeWaiter(ctx, changes)
	defer waiter.stop()
	id := d.ID
	shown := map[gatehouse.StepName]string{}
	for {
		for _, s := range orderedSteps(d.Steps) {
			word := stepWord(s)
			if shown[s.Name] == word || (s.State != gatehouse.StepSucceeded && s.State != gatehouse.StepFailed) {
				continue
			}
			shown[s.Name] = word
			var why string
			if s.State == gatehouse.StepFailed && s.LastError != "" {
				why = ": " + oneLine(truncateText(s.LastError, 200))
			}
			fmt.Fprintf(w, "  %-7s %s%s\n", clean(string(s.Name)), word, why)
		}
		switch d.State {
		case gatehouse.StateProvisioned, gatehouse.StateConfigured:
			fmt.Fprintf(w, "%s is %s\n", clean(label(d)), d.State)
			return d, nil
		case gatehouse.StateFailed:
			return d, fmt.Errorf("provisioning %s failed%s; gatehouse retries with backoff: follow it with 'gatehouse devices show %s', "+
				"or retry now with 'gatehouse devices retry %s'", label(d), failedAt(d), d.ID, d.ID)
		case gatehouse.StateApproved, gatehouse.StateProvisioning:
		default: // dismissed, stalled, decommissioned: it will not get there
			return d, fmt.Errorf("%s is %s, not provisioning%s", label(d), d.State, reasonText(d))
		}
		if err := waitFor(ctx, waiter, id); err != nil {
			return d, waitError(ctx, d, timeout)
		}
		next, err := c.Device(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return d, waitError(ctx, d, timeout)
			}
			return d, err
		}
		d = next
	}
}

// waitFor waits for a change that may concern device id.
func waitFor(ctx context.Context, waiter *changeWaiter, id string) error {
	for {
		ch, err := waiter.wait(ctx)
		if err != nil || ch.Touches(id) {
			return err
		}
	}
}

func waitError(ctx context.Context, d *gatehouse.Device, timeout time.Duration) error {
	if errors.Is(context.Cause(ctx), errWaitTimeout) {
		return fmt.Errorf("%s is not provisioned after %s (state %s%s); provisioning goes on in the server: "+
			"'gatehouse devices show %s' shows where it stands", label(d), timeout, d.State, pendingSteps(d), d.ID)
	}
	return fmt.Errorf("stopped waiting for %s (state %s): %w", label(d), d.State, ctx.Err())
}

// label names a gateway for a message: its name and id, or its id.
func label(d *gatehouse.Device) string {
	if d.Name == "" {
		return d.ID
	}
	return d.Name + " (" + d.ID + ")"
}

func failedAt(d *gatehouse.Device) string {
	for _, s := range orderedSteps(d.Steps) {
		if s.State == gatehouse.StepFailed {
			return fmt.Sprintf(" at the %s step: %s", s.Name, truncateText(s.LastError, 200))
		}
	}
	return reasonText(d)
}

func reasonText(d *gatehouse.Device) string {
	if d.Reason == "" {
		return ""
	}
	return ": " + d.Reason
}

// pendingSteps lists the steps not done yet, in the page's words.
func pendingSteps(d *gatehouse.Device) string {
	var parts []string
	for _, s := range orderedSteps(d.Steps) {
		if s.State != gatehouse.StepSucceeded {
			parts = append(parts, string(s.Name)+" "+stepWord(s))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// clearScreen moves a terminal's cursor home and clears it, so a watched
// list redraws in place.
const clearScreen = "\x1b[H\x1b[2J"

// watchList shows the list, then again whenever a gateway changes, until
// ctx ends (Ctrl-C), which is a normal end. On a terminal the list redraws
// in place; otherwise (a pipe, a file) each new list follows the last
// under a line with the time, and an unchanged list is not repeated.
func watchList(ctx context.Context, c *client.Client, cmd *deviceCmd, opts client.ListOptions) error {
	changes := openChanges(ctx, c)
	if changes != nil {
		defer changes.Close()
	}
	waiter := newChangeWaiter(ctx, changes)
	defer waiter.stop()
	tty := isTerminal(cmd.stdout)
	var last []byte
	for {
		list, err := c.ListDevices(ctx, opts)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		seen, _ := json.Marshal(list)
		if !bytes.Equal(seen, last) {
			last = seen
			now := time.Now()
			switch {
			case cmd.output == "json":
				// One list a line, for tools that read a stream of JSON.
				if err := json.NewEncoder(cmd.stdout).Encode(list); err != nil {
					return err
				}
			case tty:
				var b bytes.Buffer
				b.WriteString(clearScreen)
				fmt.Fprintf(&b, "gatehouse devices, %s (Ctrl-C to stop)\n\n", now.Format("15:04:05"))
				writeDeviceList(&b, list, now)
				cmd.stdout.Write(b.Bytes())
			default:
				fmt.Fprintf(cmd.stdout, "--- %s\n", now.Format(time.RFC3339))
				writeDeviceList(cmd.stdout, list, now)
			}
		}
		if _, err := waiter.wait(ctx); err != nil {
			return nil
		}
	}
}
