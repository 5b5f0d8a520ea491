package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river/rivertype"

	"gatehouse"
	"gatehouse/store"
)

// EventRetryRequested is the event kind recorded when an operator asks
// for a failed step to run again; the demo's --faults reads it to stop
// failing once Retry is pressed.
const EventRetryRequested = "retry_requested"

// Retry asks for another go at what a device is stuck on: a stalled
// gateway's IoT Hub follow-up starts again with a fresh deadline, and a
// failed step runs now instead of at its next backoff.
func (s *Service) Retry(ctx context.Context, actor, id string) (*gatehouse.Device, error) {
	ctx = withActor(ctx, actor)
	var jobs []int64
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		switch d.State {
		case gatehouse.StateStalled:
			err = s.restartFollowUp(ctx, tx, d, actor)
		case gatehouse.StateFailed:
			jobs = failedJobs(d)
		case gatehouse.StateDecommissioned:
			jobs, err = failedRemovalJobs(ctx, tx, id)
		default:
			return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is %s; only failed or stalled devices can be retried", id, d.State)
		}
		if err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: EventRetryRequested, Actor: actor}); err != nil {
			return err
		}
		return s.audit(ctx, tx, ActionDeviceRetry, id, nil, map[string]any{"state": string(d.State)})
	})
	if err := s.recordRefusal(ctx, ActionDeviceRetry, id, nil, err); err != nil {
		return nil, err
	}
	// After the commit: on SQLite the job queue shares our one connection.
	for _, j := range jobs {
		if err := s.retryJob(ctx, j); err != nil {
			return nil, err
		}
	}
	s.notify.Publish(id)
	return s.Device(ctx, id)
}

func (s *Service) restartFollowUp(ctx context.Context, tx *store.Tx, d *gatehouse.Device, actor string) error {
	if !s.followEnabled() {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "cannot retry: DPS, IoT Hub and a manifest must all be configured")
	}
	if err := s.setState(ctx, tx, d, change{to: gatehouse.StateProvisioned, actor: actor}); err != nil {
		return err
	}
	return s.enqueueFollow(ctx, tx, d.ID)
}

// failedJobs lists the jobs of a device's failed provisioning steps.
func failedJobs(d *gatehouse.Device) []int64 {
	var out []int64
	for _, st := range d.Steps {
		if st.State == gatehouse.StepFailed && st.JobID != 0 && st.Name != gatehouse.StepHub {
			out = append(out, st.JobID)
		}
	}
	return out
}

// retryRunningWait bounds how long a retry waits for a step's last
// attempt to be recorded. The device shows failed as soon as the step
// says so, but the queue records the attempt's end a moment later, in a
// batch; on a loaded machine that moment has taken over 5 s.
const retryRunningWait = 30 * time.Second

// retryJob makes a job run now. A step that has just failed may still be
// finishing its attempt; the queue ignores a retry of a running job, so
// wait for the attempt to be recorded first. If it is still running after
// retryRunningWait the retry is refused, not dropped in silence: the job
// would otherwise wait out its backoff while the operator thinks it runs.
func (s *Service) retryJob(ctx context.Context, id int64) error {
	deadline := time.Now().Add(retryRunningWait)
	for {
		job, err := s.jobs.Retry(ctx, id)
		if err != nil {
			return fmt.Errorf("provision: retry job %d: %w", id, err)
		}
		if job.State != rivertype.JobStateRunning {
			return nil
		}
		if time.Now().After(deadline) {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "the failed step's last attempt is still finishing; retry again in a moment")
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
