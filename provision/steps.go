package provision

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/store"
)

// runStep runs one step of one device. Every branch is safe to repeat: a
// rerun after a crash finds the step done, or redoes an idempotent call.
func (s *Service) runStep(ctx context.Context, id string, name gatehouse.StepName) error {
	in, run, err := s.beginStep(ctx, id, name)
	if err != nil || !run {
		return err
	}
	p := s.provisioner(name)
	if p == nil {
		err := fmt.Errorf("%s: backend is not configured on this server", name)
		s.cfg.Metrics.StepRan(name, 0, err)
		return s.failStep(ctx, id, name, err)
	}
	start := time.Now()
	res, err := s.provision(ctx, p, in)
	s.cfg.Metrics.StepRan(name, time.Since(start), err)
	if err != nil {
		return s.failStep(ctx, id, name, err)
	}
	sealed, err := seal(in.Key.SealKey, res.Secrets)
	if err != nil {
		return s.failStep(ctx, id, name, fmt.Errorf("%s: %w", name, err))
	}
	return s.finishStep(ctx, id, name, res.Output, sealed)
}

// stepTx runs fn as one transaction of a step, sharing its commit with the
// other steps' transactions waiting at the same moment (groupCommit). A
// step whose context has ended writes nothing, as a transaction of its own
// could not begin: a step cut off by shutdown leaves no failure behind.
func (s *Service) stepTx(ctx context.Context, fn func(context.Context, *store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("provision: step transaction: %w", err)
	}
	return s.group.do(ctx, s.db, fn)
}

// seal seals each secret to the device under its field name, so the server
// stores none of them in clear.
func seal(key []byte, secrets map[string][]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(secrets))
	for field, v := range secrets {
		b, err := protocol.Seal(key, field, v)
		if err != nil {
			return nil, fmt.Errorf("seal %s for the device: %w", field, err)
		}
		out[field] = b
	}
	return out, nil
}

// record is a StepInput's Record: it merges values into the step's output
// in a transaction of its own, so they are durable before the step calls
// out.
func (s *Service) record(id string, name gatehouse.StepName) func(context.Context, map[string]string) error {
	return func(ctx context.Context, kv map[string]string) error {
		return s.stepTx(ctx, func(ctx context.Context, tx *store.Tx) error { return tx.MergeStepOutput(ctx, id, name, kv) })
	}
}

// inputFor is what a backend's step knows of device d with its key k.
func (s *Service) inputFor(d *gatehouse.Device, k *gatehouse.DeviceKey, name gatehouse.StepName) *gatehouse.StepInput {
	return &gatehouse.StepInput{Device: d, Key: k, Recorded: stepOutput(d, name), Record: s.record(d.ID, name)}
}

// beginStep marks the step running, unless it is already done or the device
// no longer wants provisioning (dismissed or decommissioned meanwhile).
func (s *Service) beginStep(ctx context.Context, id string, name gatehouse.StepName) (*gatehouse.StepInput, bool, error) {
	var in *gatehouse.StepInput
	err := s.stepTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		if !stepWanted(d.State, name) || stepState(d, name) == gatehouse.StepSucceeded || superseded(ctx, d, name) {
			return nil
		}
		k, err := tx.FindKey(ctx, d.Fingerprint)
		if err != nil {
			return err
		}
		in = s.inputFor(d, k, name)
		if err := tx.StartStep(ctx, id, name); err != nil {
			return err
		}
		if err := stepStarted(ctx, tx, d, name); err != nil {
			return err
		}
		if d.State == gatehouse.StateApproved {
			return s.setState(ctx, tx, d, change{to: gatehouse.StateProvisioning})
		}
		return nil
	})
	if err == nil && in != nil {
		s.notify.Publish(id)
	}
	return in, in != nil, err
}

// stepWanted says whether a step should run for a device in state s:
// dismissed or decommissioned devices want nothing, and the IoT Hub step
// starts only once the device is provisioned.
func stepWanted(s gatehouse.State, name gatehouse.StepName) bool {
	if name == gatehouse.StepHub {
		return s == gatehouse.StateProvisioned
	}
	return s == gatehouse.StateApproved || s == gatehouse.StateProvisioning || s == gatehouse.StateFailed
}

// stepStarted puts an attempt on the timeline. The IoT Hub step looks again
// and again while it waits, so only its first look is worth an entry.
func stepStarted(ctx context.Context, tx *store.Tx, d *gatehouse.Device, name gatehouse.StepName) error {
	n := stepAttempts(d, name)
	if name == gatehouse.StepHub && n > 0 {
		return nil
	}
	detail := fmt.Sprintf("%s, attempt %d", name, n+1)
	return tx.AddEvent(ctx, gatehouse.Event{DeviceID: d.ID, Kind: "step_started", Detail: detail})
}

func stepState(d *gatehouse.Device, name gatehouse.StepName) gatehouse.StepState {
	if st := findStep(d, name); st != nil {
		return st.State
	}
	return ""
}

func stepAttempts(d *gatehouse.Device, name gatehouse.StepName) int {
	if st := findStep(d, name); st != nil {
		return st.Attempts
	}
	return 0
}

func findStep(d *gatehouse.Device, name gatehouse.StepName) *gatehouse.Step {
	for i := range d.Steps {
		if d.Steps[i].Name == name {
			return &d.Steps[i]
		}
	}
	return nil
}

// stepOutput is a copy of what a step has recorded so far.
func stepOutput(d *gatehouse.Device, name gatehouse.StepName) map[string]string {
	out := map[string]string{}
	if st := findStep(d, name); st != nil {
		maps.Copy(out, st.Output)
	}
	return out
}

// failStep records the reason and returns the error so the job queue retries.
func (s *Service) failStep(ctx context.Context, id string, name gatehouse.StepName, cause error) error {
	reason := cause.Error()
	s.log.Warn("provisioning step failed", "device", id, "step", name, "err", reason)
	err := s.stepTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.FailStep(ctx, id, name, reason); err != nil {
			return err
		}
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		why := withStep(name, reason)
		if err := s.setState(ctx, tx, d, change{to: gatehouse.StateFailed, reason: why}); err != nil {
			return err
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "step_failed", Detail: why})
	})
	if err != nil {
		return fmt.Errorf("record failure of %s (%v): %w", name, cause, err)
	}
	s.notify.Publish(id)
	return cause
}

// withStep names the step in a reason, unless the backend's error already
// starts with it.
func withStep(name gatehouse.StepName, reason string) string {
	if strings.HasPrefix(reason, string(name)+":") {
		return reason
	}
	return string(name) + ": " + reason
}

// finishStep records the result; the last step to succeed marks the device
// provisioned, which releases its bundle to the waiting agent.
func (s *Service) finishStep(ctx context.Context, id string, name gatehouse.StepName, output map[string]string, sealed map[string][]byte) error {
	var done bool
	err := s.stepTx(ctx, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.FinishStep(ctx, id, name, output, sealed); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "step_succeeded", Detail: string(name)}); err != nil {
			return err
		}
		if err := s.keepStepCertificate(ctx, tx, id, output); err != nil {
			return err
		}
		var err error
		done, err = s.settleDevice(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	if done {
		s.log.Info("device provisioned", "device", id)
	}
	s.notify.Publish(id)
	return nil
}

// settleDevice derives the device state from its provisioning steps after
// one finished; the last one to succeed starts the IoT Hub follow-up. Only
// a change of state reads the whole device and writes it: a step that
// leaves the device provisioning, as all but the last do, writes nothing
// more than its own row.
func (s *Service) settleDevice(ctx context.Context, tx *store.Tx, id string) (bool, error) {
	now, reason, steps, err := tx.StepStates(ctx, id)
	if err != nil || now == gatehouse.StateDecommissioned {
		return false, err
	}
	state := gatehouse.StateProvisioned
	for _, st := range steps {
		switch {
		case st.Name == gatehouse.StepHub:
		case st.State == gatehouse.StepFailed:
			return false, nil // still failed on another step; keep its reason
		case st.State != gatehouse.StepSucceeded:
			state = gatehouse.StateProvisioning
		}
	}
	if state == now && reason == "" {
		return false, nil
	}
	d, err := tx.Device(ctx, id)
	if err != nil {
		return false, err
	}
	if err := s.setState(ctx, tx, d, change{to: state}); err != nil {
		return false, err
	}
	if state != gatehouse.StateProvisioned {
		return false, nil
	}
	if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "provisioned", Detail: "all backend steps succeeded"}); err != nil {
		return false, err
	}
	return true, s.startFollowUp(ctx, tx, id)
}

// keepCertificate keeps the certificate a step's output holds, so it can be
// revoked on decommission or renewal and watched for expiry. It is kept
// under the key the device holds as the step finishes.
func keepCertificate(ctx context.Context, tx *store.Tx, id string, output map[string]string, origin string) error {
	serial, pemText := output[gatehouse.OutSerial], output[gatehouse.OutCertificate]
	if serial == "" || pemText == "" {
		return nil
	}
	c, err := gatehouse.ParseDeviceCert(serial, pemText)
	if err != nil {
		return err
	}
	c.DeviceID, c.Origin = id, origin
	return tx.AddCertificateOfKey(ctx, c)
}
