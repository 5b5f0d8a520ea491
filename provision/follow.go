package provision

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/store"
)

// followArgs is the durable follow-up of one provisioned gateway. Since is
// when this follow-up began; a retry starts a new one.
type followArgs struct {
	DeviceID string    `json:"device_id" river:"unique"`
	Since    time.Time `json:"since" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (followArgs) Kind() string { return "follow_hub" }

// InsertOpts makes a second enqueue of the same follow-up a no-op, and keeps
// follow-ups in their own queue: thousands of gateways waiting on the DPS
// quota must not hold up the provisioning of newly approved ones.
func (followArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueFollow, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type followWorker struct {
	river.WorkerDefaults[followArgs]
	svc *Service
}

func (w *followWorker) Work(ctx context.Context, job *river.Job[followArgs]) error {
	return w.svc.follow(withJob(ctx, job.ID), job.Args)
}

// followEnabled says whether a backend finishes gateways' cloud side.
func (s *Service) followEnabled() bool { return s.follower() != nil }

// startFollowUp adds the IoT Hub step and its job, in the caller's
// transaction.
func (s *Service) startFollowUp(ctx context.Context, tx *store.Tx, id string) error {
	if !s.followEnabled() {
		return nil
	}
	if err := tx.EnsureStep(ctx, id, gatehouse.StepHub); err != nil {
		return err
	}
	return s.enqueueFollow(ctx, tx, id)
}

func (s *Service) enqueueFollow(ctx context.Context, tx *store.Tx, id string) error {
	res, err := tx.Enqueue(ctx, followArgs{DeviceID: id, Since: tx.Now()}, nil)
	if err != nil {
		return fmt.Errorf("provision: enqueue follow-up: %w", err)
	}
	return tx.SetStepJob(ctx, id, gatehouse.StepHub, res.Job.ID)
}

// follow takes one look at a gateway through the follower: not done yet,
// it comes back later (sooner while the gateway is new); done, the gateway
// is configured; past the deadline, or stuck, it is marked stalled.
func (s *Service) follow(ctx context.Context, a followArgs) error {
	f := s.follower()
	if f == nil {
		return nil // the backend was switched off; nothing to follow
	}
	in, run, err := s.beginStep(ctx, a.DeviceID, f.Step())
	if err != nil || !run {
		return err
	}
	res, err := f.Follow(ctx, in)
	if res != nil {
		if nerr := s.noteEvents(ctx, a.DeviceID, res.Events); nerr != nil {
			return nerr
		}
	}
	switch {
	case err != nil:
		return s.failFollow(ctx, a.DeviceID, err)
	case res.Stalled != "":
		return s.stall(ctx, a.DeviceID, res.Stalled)
	case !res.Done:
		return s.waitAssignment(ctx, a, res.Waiting)
	}
	return s.finishConfigured(ctx, a.DeviceID, res.Output)
}

// waitAssignment snoozes the follow-up, or stalls it past the deadline.
func (s *Service) waitAssignment(ctx context.Context, a followArgs, why string) error {
	elapsed := time.Since(a.Since)
	if elapsed >= s.cfg.FollowDeadline {
		return s.stall(ctx, a.DeviceID, fmt.Sprintf("not assigned to an IoT Hub within %v: %s", s.cfg.FollowDeadline, why))
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		return tx.NoteStep(ctx, a.DeviceID, gatehouse.StepHub, "waiting: "+why)
	})
	if err != nil {
		return err
	}
	return river.JobSnooze(s.followDelay(elapsed))
}

// followDelay polls a new gateway often and an old one rarely, so
// thousands of waiting gateways stay well inside the DPS quota.
func (s *Service) followDelay(elapsed time.Duration) time.Duration {
	return min(max(elapsed/10, s.cfg.FollowPollMin), s.cfg.FollowPollMax)
}

func (s *Service) failFollow(ctx context.Context, id string, cause error) error {
	s.log.Warn("iot hub follow-up failed", "device", id, "err", cause)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.FailStep(ctx, id, gatehouse.StepHub, cause.Error()); err != nil {
			return err
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "step_failed", Detail: withStep(gatehouse.StepHub, cause.Error())})
	})
	if err != nil {
		return err
	}
	s.notify.Publish(id)
	return cause
}

// stall ends the follow-up with a reason the operator sees; a retry starts
// a new one.
func (s *Service) stall(ctx context.Context, id, reason string) error {
	s.log.Warn("gateway stalled", "device", id, "reason", reason)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil || superseded(ctx, d, gatehouse.StepHub) {
			return err
		}
		if err := tx.FailStep(ctx, id, gatehouse.StepHub, reason); err != nil {
			return err
		}
		if err := s.setState(ctx, tx, d, change{to: gatehouse.StateStalled, reason: reason}); err != nil {
			return err
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "stalled", Detail: reason})
	})
	if err == nil {
		s.notify.Publish(id)
	}
	return err
}

// noteEvents puts a follower's events on the timeline, each kind and
// detail once however often the follower looks.
func (s *Service) noteEvents(ctx context.Context, id string, events []gatehouse.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		have, err := tx.Events(ctx, id)
		if err != nil {
			return err
		}
		for _, e := range events {
			seen := slices.ContainsFunc(have, func(h gatehouse.Event) bool { return h.Kind == e.Kind && h.Detail == e.Detail })
			if seen {
				continue
			}
			e.DeviceID = id
			if err := tx.AddEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Service) finishConfigured(ctx context.Context, id string, output map[string]string) error {
	hub := output[gatehouse.OutAssignedHub]
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil || superseded(ctx, d, gatehouse.StepHub) {
			return err
		}
		if err := tx.FinishStep(ctx, id, gatehouse.StepHub, output, nil); err != nil {
			return err
		}
		return s.setState(ctx, tx, d, change{to: gatehouse.StateConfigured})
	})
	if err == nil {
		s.log.Info("gateway configured", "device", id, "hub", hub)
		s.notify.Publish(id)
	}
	return err
}
