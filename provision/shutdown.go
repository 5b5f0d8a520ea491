package provision

import (
	"context"
	"fmt"
	"time"
)

// Shutdown stops the job runner for good: no new step starts, steps already
// running get grace to finish, and those still running then have their
// contexts cancelled. A step cut off that way is not a failure: the job goes
// back to the queue as it was (River records no error and gives the attempt
// back) and the next start runs it again, which every step is built to
// survive. ctx bounds the whole shutdown, so it should leave time beyond
// grace for cancelled steps to return and their jobs to be put back; if it
// ends first the error says so, and those jobs stay marked running until the
// next start rescues them (Config.RescueAfter), so no work is lost either way.
//
// The Start context must not be one that a shutdown cancels (a signal's, say):
// River cancels running steps at once when it is, leaving no grace.
func (s *Service) Shutdown(ctx context.Context, grace time.Duration) error {
	defer s.stopListening()
	s.log.Info("stopping the job runner; running steps may finish", "grace", grace)
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	err := s.jobs.Stop(graceCtx)
	cancel()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// The caller gives up waiting before the grace is over; cancel
		// anyway, so the steps stop calling out.
		s.hardStop(ctx)
		return fmt.Errorf("provision: shutdown cut short before the grace ended, running steps cancelled without waiting: %w", err)
	}
	s.log.Warn("steps still running after the shutdown grace; cancelling them, they run again on the next start", "grace", grace)
	if err := s.jobs.StopAndCancel(ctx); err != nil {
		return fmt.Errorf("provision: steps cancelled after the grace did not return in time; they run again once rescued on a later start: %w", err)
	}
	return nil
}

// hardStop cancels the running steps without waiting for them: StopAndCancel
// cancels before it waits, and with ctx already done it returns at once.
func (s *Service) hardStop(ctx context.Context) {
	_ = s.jobs.StopAndCancel(ctx)
}
