// Package simulate holds in-process, stateful stand-ins for the backends
// gatehouse provisions into (Mender, Azure DPS, a Vault PKI). They keep state
// and answer like the real services, so tests and `gatehouse demo` exercise
// the same code paths as production, including conflicts and failures.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrTransient is the failure injected by SetFailRate, and by FailNext with a
// nil error: a retryable answer such as a 503 from the real service.
var ErrTransient = errors.New("503 service unavailable (simulated)")

// ErrLostResponse is returned by calls hit by LoseNext: the request took
// effect, but the caller never saw the answer, as after a timeout.
var ErrLostResponse = errors.New("response lost after the request took effect (simulated)")

// Faults injects latency and failures into a simulator's API calls. The zero
// value injects nothing. It is safe for concurrent use.
type Faults struct {
	mu       sync.Mutex
	latency  time.Duration
	failNext int
	failErr  error
	failRate float64
	loseNext int
	blocked  chan struct{} // closed by Unblock; nil when not blocked
	calls    int
}

// SetLatency delays every later call by d, or until its context is done.
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// FailNext makes the next n calls return err (ErrTransient if nil) before
// they touch state.
func (f *Faults) FailNext(n int, err error) {
	if err == nil {
		err = ErrTransient
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.failErr = n, err
}

// SetFailRate makes a random fraction p of calls fail with ErrTransient
// before they touch state. 0 turns it off.
func (f *Faults) SetFailRate(p float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failRate = p
}

// LoseNext makes the next n successful state-changing calls apply their
// change and then return ErrLostResponse, so retries meet their own work.
func (f *Faults) LoseNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseNext = n
}

// Block holds every later call until Unblock or until its context is done,
// so a test can stop the world in the middle of a provisioning step.
func (f *Faults) Block() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked == nil {
		f.blocked = make(chan struct{})
	}
}

// Unblock releases the calls held by Block.
func (f *Faults) Unblock() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked != nil {
		close(f.blocked)
		f.blocked = nil
	}
}

// Calls returns how many API calls have started, including failed and
// still-blocked ones.
func (f *Faults) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// enter runs the fault plan at the start of a call. A non-nil error means the
// call must return it without touching state.
func (f *Faults) enter(ctx context.Context, service string) error {
	// Counting and reading the block under one lock means a test that sees
	// Calls() go up knows the call is already held.
	f.mu.Lock()
	f.calls++
	latency, blocked := f.latency, f.blocked
	f.mu.Unlock()

	if err := wait(ctx, blocked, latency); err != nil {
		return fmt.Errorf("%s: %w", service, err)
	}
	if err := f.injected(); err != nil {
		return fmt.Errorf("%s: %w", service, err)
	}
	return nil
}

func wait(ctx context.Context, blocked <-chan struct{}, latency time.Duration) error {
	if blocked != nil {
		select {
		case <-blocked:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// A caller that has already given up must not change state either.
	return ctx.Err()
}

func (f *Faults) injected() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext > 0 {
		f.failNext--
		return f.failErr
	}
	if f.failRate > 0 && rand.Float64() < f.failRate {
		return ErrTransient
	}
	return nil
}

// lose is called after a call changed state; it decides whether the caller
// gets the answer.
func (f *Faults) lose(service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loseNext > 0 {
		f.loseNext--
		return fmt.Errorf("%s: %w", service, ErrLostResponse)
	}
	return nil
}
