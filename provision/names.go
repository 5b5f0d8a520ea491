package provision

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// nameCheckTimeout bounds how long an approval waits for the backends to say
// whether a name is free.
const nameCheckTimeout = 15 * time.Second

// nameCheck is one backend's answer about a name.
type nameCheck struct {
	backend string
	where   []string // where the name is taken; empty when free
	err     error
}

// checkNameFree asks every configured backend, at once, whether it already
// holds the name. Nothing is created anywhere when a name is taken or a
// backend cannot answer: the operator gets a clear error instead.
func (s *Service) checkNameFree(ctx context.Context, name string) error {
	return s.checkNameFreeIn(ctx, name, s.cfg.Backends)
}

// checkNameFreeIn asks only the given backends.
func (s *Service) checkNameFreeIn(ctx context.Context, name string, backends []gatehouse.Backend) error {
	ctx, cancel := context.WithTimeout(ctx, nameCheckTimeout)
	defer cancel()
	var taken, failed []string
	for _, c := range askBackends(ctx, backends, name) {
		switch {
		case c.err != nil:
			s.log.WarnContext(ctx, "name check failed", "backend", c.backend, "name", name, "err", c.err)
			failed = append(failed, fmt.Sprintf("%s (%v)", c.backend, c.err))
		case len(c.where) > 0:
			taken = append(taken, c.where...)
		}
	}
	if len(taken) > 0 {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "name %q is already taken in %s", name, strings.Join(taken, ", "))
	}
	if len(failed) > 0 {
		return gatehouse.Errorf(gatehouse.EUNAVAILABLE, "cannot check whether name %q is free: %s; nothing was changed, try again", name, strings.Join(failed, "; "))
	}
	return nil
}

func askBackends(ctx context.Context, backends []gatehouse.Backend, name string) []nameCheck {
	var checks []func() nameCheck
	for _, b := range backends {
		checks = append(checks, func() nameCheck {
			where, err := b.NameTaken(ctx, name)
			return nameCheck{backend: b.Name(), where: where, err: err}
		})
	}
	return runChecks(checks)
}

func runChecks(checks []func() nameCheck) []nameCheck {
	out := make([]nameCheck, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { out[i] = c() })
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].backend < out[j].backend })
	return out
}

// nameTakenBy is the refusal of a name another gateway holds in gatehouse.
// The message names that gateway by its MAC as well as its id, which is
// what an operator can find it by (on its label, in the list), and the
// error carries it for the page to link to.
func nameTakenBy(name string, other *gatehouse.Device) *gatehouse.Error {
	e := gatehouse.Errorf(gatehouse.ECONFLICT, "name %q is already taken in gatehouse by another gateway (MAC %s, device id %s)",
		name, other.MAC, other.ID)
	e.Conflict = &gatehouse.Conflict{ID: other.ID, Name: other.Name, MAC: other.MAC}
	return e
}

// nameTaken is the refusal of a name the database found taken when it
// wrote it (store.ErrUnique: another approval or rename won a race with
// this one), naming the winner when it can still be read.
func (s *Service) nameTaken(ctx context.Context, name string) error {
	var other *gatehouse.Device
	err := s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		other, err = tx.DeviceByName(ctx, name)
		return err
	})
	switch {
	case err == nil:
		return nameTakenBy(name, other)
	case gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND:
		// Taken and freed again in between: the name is in the allowlist's
		// keeping, or the winner was forgotten. Say what happened.
		return gatehouse.Errorf(gatehouse.ECONFLICT, "name %q is already taken in gatehouse", name)
	}
	return err
}
