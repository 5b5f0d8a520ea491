package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/manifest"
	"gatehouse/store"
)

// Manifests renders a gateway's IoT Edge deployment manifest; a
// *manifest.Set does.
type Manifests interface {
	Render(d manifest.Data) (json.RawMessage, error)
}

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
	return w.svc.follow(ctx, job.Args)
}

// followEnabled says whether gatehouse can finish a gateway's cloud side:
// it needs DPS to learn the hub, the hub's credentials and a manifest.
func (s *Service) followEnabled() bool {
	b := s.cfg.Backends
	return b.DPS != nil && b.IoTHub != nil && s.cfg.Manifests != nil
}

// startFollowUp adds the IoT Hub step and its job, in the caller's
// transaction.
func (s *Service) startFollowUp(ctx context.Context, tx *store.Tx, id string) error {
	if !s.followEnabled() {
		return nil
	}
	if err := tx.CreateSteps(ctx, id, []gatehouse.StepName{gatehouse.StepHub}); err != nil && !errors.Is(err, store.ErrUnique) {
		return err
	}
	return s.enqueueFollow(ctx, tx, id)
}

func (s *Service) enqueueFollow(ctx context.Context, tx *store.Tx, id string) error {
	res, err := s.jobs.InsertTx(ctx, tx.SQL(), followArgs{DeviceID: id, Since: tx.Now()}, nil)
	if err != nil {
		return fmt.Errorf("provision: enqueue follow-up: %w", err)
	}
	return tx.SetStepJob(ctx, id, gatehouse.StepHub, res.Job.ID)
}

// follow takes one look at a gateway's registration: not yet assigned, it
// comes back later (sooner while the gateway is new); assigned, it applies
// the manifest; past the deadline, it marks the gateway stalled.
func (s *Service) follow(ctx context.Context, a followArgs) error {
	in, run, err := s.beginStep(ctx, a.DeviceID, gatehouse.StepHub)
	if err != nil || !run {
		return err
	}
	reg, err := s.cfg.Backends.DPS.Registration(ctx, in.Device.Name)
	switch {
	case errors.Is(err, gatehouse.ErrBackendNotFound):
		return s.waitAssignment(ctx, a, "the gateway has not registered with DPS yet")
	case err != nil:
		return s.failFollow(ctx, a.DeviceID, err)
	case reg.Status != "assigned":
		return s.waitAssignment(ctx, a, "DPS registration is "+reg.Status+detail(reg.ErrorMessage))
	}
	return s.configure(ctx, in, reg)
}

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
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
		if err := tx.FailStep(ctx, id, gatehouse.StepHub, reason); err != nil {
			return err
		}
		d, err := tx.Device(ctx, id)
		if err != nil {
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

// configure applies the manifest in the assigned hub.
func (s *Service) configure(ctx context.Context, in *stepInput, reg gatehouse.Registration) error {
	d, hub := in.Device, reg.AssignedHub
	if err := s.noteAssigned(ctx, d.ID, hub); err != nil {
		return err
	}
	if !slices.Contains(s.cfg.Backends.IoTHub.Hubs(), hub) {
		return s.stall(ctx, d.ID, fmt.Sprintf("DPS assigned the gateway to IoT Hub %s, for which gatehouse has no credentials; add its connection string to GATEHOUSE_IOTHUB_CONNECTION_STRINGS, restart, and retry", hub))
	}
	deviceID := reg.DeviceID
	if deviceID == "" {
		deviceID = d.Name
	}
	content, err := s.cfg.Manifests.Render(manifest.Data{Name: d.Name, RegistrationID: d.Name, Hub: hub, MAC: d.MAC, DeviceID: deviceID, Labels: d.Labels})
	if err != nil {
		return s.stall(ctx, d.ID, "cannot render the deployment manifest: "+err.Error())
	}
	if err := s.cfg.Backends.IoTHub.ApplyConfiguration(ctx, hub, deviceID, content); err != nil {
		return s.failFollow(ctx, d.ID, err)
	}
	return s.finishConfigured(ctx, d.ID, hub)
}

// noteAssigned puts the assignment on the timeline once.
func (s *Service) noteAssigned(ctx context.Context, id, hub string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		evs, err := tx.Events(ctx, id)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Kind == "assigned" && e.Detail == hub {
				return nil
			}
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "assigned", Detail: hub})
	})
}

func (s *Service) finishConfigured(ctx context.Context, id, hub string) error {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.FinishStep(ctx, id, gatehouse.StepHub, map[string]string{outAssignedHub: hub}, nil); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "manifest_applied", Detail: hub}); err != nil {
			return err
		}
		d, err := tx.Device(ctx, id)
		if err != nil {
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
