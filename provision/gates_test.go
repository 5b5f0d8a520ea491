package provision_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"gatehouse"
)

// gate holds the calls that write to a backend until opened, and can fail a
// number of them first. Lookups pass through, so approval's name check still
// works while provisioning steps are held.
type gate struct {
	mu      sync.Mutex
	open    chan struct{}
	entered atomic.Int32
	fails   atomic.Int32
}

func newGate(closed bool) *gate {
	g := &gate{open: make(chan struct{})}
	if !closed {
		close(g.open)
	}
	return g
}

var errFlaky = errors.New("simulated outage")

func (g *gate) pass(ctx context.Context) error {
	g.entered.Add(1)
	if g.fails.Add(-1) >= 0 {
		return errFlaky
	}
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) Open() { close(g.open) }

// gatedDPS gates enrollment creation.
type gatedDPS struct {
	gatehouse.DPS
	*gate
}

func (d gatedDPS) CreateEnrollment(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	if err := d.pass(ctx); err != nil {
		return gatehouse.Enrollment{}, err
	}
	return d.DPS.CreateEnrollment(ctx, e)
}

// gatedPKI gates certificate issue.
type gatedPKI struct {
	gatehouse.PKI
	*gate
}

func (p gatedPKI) Issue(ctx context.Context, cn string) (gatehouse.Certificate, error) {
	if err := p.pass(ctx); err != nil {
		return gatehouse.Certificate{}, err
	}
	return p.PKI.Issue(ctx, cn)
}
