package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"gatehouse"
	"gatehouse/store"
)

// ActionDeviceDecommission and ActionDeviceForget are the audit actions of
// retiring a gateway and of forgetting it.
const (
	ActionDeviceDecommission = "device.decommission"
	ActionDeviceForget       = "device.forget"
)

// removalArgs is the durable job that removes one device from one backend.
type removalArgs struct {
	DeviceID string `json:"device_id" river:"unique"`
	Backend  string `json:"backend" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (removalArgs) Kind() string { return "decommission_backend" }

// InsertOpts makes a second enqueue of the same removal a no-op.
func (removalArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type removalWorker struct {
	river.WorkerDefaults[removalArgs]
	svc *Service
}

func (w *removalWorker) Work(ctx context.Context, job *river.Job[removalArgs]) error {
	return w.svc.runRemoval(ctx, job.Args.DeviceID, job.Args.Backend)
}

// decommissioners are the configured backends that can remove a gateway.
func (s *Service) decommissioners() []gatehouse.Decommissioner {
	var out []gatehouse.Decommissioner
	for _, b := range s.cfg.Backends {
		if d, ok := b.(gatehouse.Decommissioner); ok {
			out = append(out, d)
		}
	}
	return out
}

func (s *Service) decommissioner(name string) gatehouse.Decommissioner {
	for _, d := range s.decommissioners() {
		if d.Name() == name {
			return d
		}
	}
	return nil
}

// stepOf is the provisioning step whose output says what a backend holds.
func stepOf(b gatehouse.Backend) gatehouse.StepName {
	if st, ok := b.(interface{ Step() gatehouse.StepName }); ok {
		return st.Step()
	}
	return ""
}

// Decommission removes a gateway from every backend, or with dryRun says
// what it would remove and changes nothing at all. The device is
// decommissioned at once, so its key is refused from then on; each
// backend's removal is a durable job of its own. Decommissioning again
// changes nothing.
func (s *Service) Decommission(ctx context.Context, actor, id string, dryRun bool) (*gatehouse.Decommission, error) {
	if dryRun {
		return s.planDecommission(ctx, id)
	}
	ctx = withActor(ctx, actor)
	err := s.decommission(ctx, actor, id)
	if err := s.recordRefusal(ctx, ActionDeviceDecommission, id, nil, err); err != nil {
		return nil, err
	}
	s.pending.forget()
	s.log.InfoContext(ctx, "device decommissioned", "device", id, "by", actor)
	s.notify.Publish(id)
	d, err := s.Device(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.Decommission, nil
}

func (s *Service) decommission(ctx context.Context, actor, id string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		if d.State == gatehouse.StateDecommissioned {
			return s.audit(ctx, tx, ActionDeviceDecommission, id, nil, map[string]any{"unchanged": "already decommissioned"})
		}
		// A device never approved has nothing in any backend.
		var backends []string
		if len(d.Steps) > 0 {
			for _, b := range s.decommissioners() {
				backends = append(backends, b.Name())
			}
		}
		if err := tx.CreateDecommission(ctx, id, actor, d.State, backends); err != nil {
			return err
		}
		if err := s.setState(ctx, tx, d, change{to: gatehouse.StateDecommissioned, actor: actor}); err != nil {
			return err
		}
		detail := "nothing was provisioned; nothing to remove"
		if len(backends) > 0 {
			detail = "removing it from " + strings.Join(backends, ", ")
		}
		if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "decommissioned", Actor: actor, Detail: detail}); err != nil {
			return err
		}
		if err := s.enqueueRemovals(ctx, tx, id, backends); err != nil {
			return err
		}
		return s.audit(ctx, tx, ActionDeviceDecommission, id, nil, map[string]any{
			"name": d.Name, "fingerprint": d.Fingerprint, "mac": d.MAC, "from": string(d.State), "backends": backends})
	})
}

func (s *Service) enqueueRemovals(ctx context.Context, tx *store.Tx, id string, backends []string) error {
	if len(backends) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, 0, len(backends))
	for _, b := range backends {
		params = append(params, river.InsertManyParams{Args: removalArgs{DeviceID: id, Backend: b}})
	}
	res, err := tx.EnqueueMany(ctx, params)
	if err != nil {
		return fmt.Errorf("provision: enqueue removals: %w", err)
	}
	for i, r := range res {
		if err := tx.SetRemovalJob(ctx, id, backends[i], r.Job.ID); err != nil {
			return err
		}
	}
	return nil
}

// planDecommission asks each backend what it would remove. It writes
// nothing: no state, no event, no audit entry. A backend that cannot
// answer says why in its entry instead of failing the whole plan.
func (s *Service) planDecommission(ctx context.Context, id string) (*gatehouse.Decommission, error) {
	var d *gatehouse.Device
	var certs []gatehouse.DeviceCert
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if d, err = tx.Device(ctx, id); err != nil {
			return err
		}
		certs, err = tx.Certificates(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	plan := &gatehouse.Decommission{DeviceID: id, Name: d.Name, DryRun: true, Backends: []gatehouse.BackendRemoval{}}
	if d.State == gatehouse.StateDecommissioned || len(d.Steps) == 0 {
		return plan, nil // already done, or nothing was ever provisioned
	}
	for _, b := range s.decommissioners() {
		in := removalInput(d, nil, b, certs)
		r := gatehouse.BackendRemoval{Backend: b.Name(), Removals: []gatehouse.Removal{}}
		removals, err := b.Decommission(ctx, in, true)
		if err != nil {
			r.LastError = err.Error()
		} else if removals != nil {
			r.Removals = removals
		}
		plan.Backends = append(plan.Backends, r)
	}
	return plan, nil
}

// removalInput is what a backend's removal knows: the device and what its
// provisioning step recorded. Only the PKI's gets the kept serials.
func removalInput(d *gatehouse.Device, k *gatehouse.DeviceKey, b gatehouse.Backend, certs []gatehouse.DeviceCert) *gatehouse.StepInput {
	step := stepOf(b)
	in := &gatehouse.StepInput{Device: d, Key: k, Recorded: stepOutput(d, step),
		Record: func(context.Context, map[string]string) error {
			return errors.New("provision: a removal records nothing in its provisioning step")
		}}
	if step == gatehouse.StepVault {
		for _, c := range certs {
			if c.RevokedAt == nil {
				in.Serials = append(in.Serials, c.Serial)
			}
		}
	}
	return in
}

// runRemoval works one backend's removal of one device. Every branch is
// safe to repeat: a removal finds what is gone already gone.
func (s *Service) runRemoval(ctx context.Context, id, backend string) error {
	b := s.decommissioner(backend)
	if b == nil {
		return s.failRemoval(ctx, id, backend, fmt.Errorf("%s: backend is not configured on this server", backend))
	}
	in, wait, err := s.beginRemoval(ctx, id, b)
	if err != nil || in == nil {
		return err
	}
	if wait != "" {
		return river.JobSnooze(s.cfg.RetryBase)
	}
	removals, err := b.Decommission(ctx, in, false)
	if err != nil {
		return s.failRemoval(ctx, id, backend, err)
	}
	return s.finishRemoval(ctx, id, backend, removals, in.Serials)
}

// beginRemoval marks the removal running, unless it is done already or
// must wait: for the backend's own provisioning step to stop running (it
// may be creating the object just now), and the IoT Hub's for DPS, whose
// enrollment would otherwise let the gateway register, and be created in
// the hub, again. A nil input means nothing to do.
func (s *Service) beginRemoval(ctx context.Context, id string, b gatehouse.Decommissioner) (*gatehouse.StepInput, string, error) {
	var in *gatehouse.StepInput
	var wait string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		r, _, err := tx.RemovalStep(ctx, id, b.Name())
		if err != nil || r.State == gatehouse.StepSucceeded {
			return err
		}
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		if wait, err = s.removalWait(ctx, tx, d, b); err != nil {
			return err
		}
		certs, err := tx.Certificates(ctx, id)
		if err != nil {
			return err
		}
		in = removalInput(d, nil, b, certs)
		if wait != "" {
			return tx.NoteRemoval(ctx, id, b.Name(), wait)
		}
		return tx.StartRemoval(ctx, id, b.Name())
	})
	if err == nil && in != nil {
		s.notify.Publish(id)
	}
	return in, wait, err
}

// removalWait says what a removal must wait for, or "".
func (s *Service) removalWait(ctx context.Context, tx *store.Tx, d *gatehouse.Device, b gatehouse.Decommissioner) (string, error) {
	if st := findStep(d, stepOf(b)); st != nil && st.JobID != 0 {
		job, err := tx.Job(ctx, st.JobID)
		if err != nil && !errors.Is(err, river.ErrNotFound) {
			return "", fmt.Errorf("provision: read job of step %s: %w", st.Name, err)
		}
		if err == nil && job.State == rivertype.JobStateRunning {
			return fmt.Sprintf("waiting for the running %s step to stop", st.Name), nil
		}
	}
	if stepOf(b) != gatehouse.StepHub {
		return "", nil
	}
	for _, p := range s.provisioners() {
		if p.Step() != gatehouse.StepDPS {
			continue
		}
		r, _, err := tx.RemovalStep(ctx, d.ID, p.Name())
		if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if r.State != gatehouse.StepSucceeded {
			return "waiting for " + p.Name() + " to delete the enrollment, so the gateway cannot register into a hub again", nil
		}
	}
	return "", nil
}

// failRemoval records the reason, on the timeline when it is new, and
// returns the error so the job queue retries with backoff.
func (s *Service) failRemoval(ctx context.Context, id, backend string, cause error) error {
	reason := cause.Error()
	if !strings.HasPrefix(reason, backend+":") {
		reason = backend + ": " + reason
	}
	s.log.Warn("decommission step failed", "device", id, "backend", backend, "err", reason)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		r, _, err := tx.RemovalStep(ctx, id, backend)
		if err != nil {
			return err
		}
		if err := tx.FailRemoval(ctx, id, backend, reason); err != nil {
			return err
		}
		if r.LastError == reason {
			return nil // the same failure again: the attempt count shows it
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "removal_failed",
			Detail: fmt.Sprintf("attempt %d failed, retrying: %s", r.Attempts, reason)})
	})
	if err != nil {
		return fmt.Errorf("record failure of removal from %s (%v): %w", backend, cause, err)
	}
	s.notify.Publish(id)
	return cause
}

// finishRemoval keeps the receipt and puts it on the timeline; the PKI's
// revoked serials are marked in the kept certificates.
func (s *Service) finishRemoval(ctx context.Context, id, backend string, removals []gatehouse.Removal, serials []string) error {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.FinishRemoval(ctx, id, backend, removals); err != nil {
			return err
		}
		for _, serial := range serials {
			if err := tx.MarkCertRevoked(ctx, serial); err != nil {
				return err
			}
		}
		if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "removed", Detail: receipt(backend, removals)}); err != nil {
			return err
		}
		dec, err := tx.Decommission(ctx, id)
		if err != nil || !dec.Done() {
			return err
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "removed_everywhere",
			Detail: "every backend has removed the gateway; it can be forgotten now"})
	})
	if err != nil {
		return err
	}
	s.log.Info("gateway removed from backend", "device", id, "backend", backend)
	s.notify.Publish(id)
	return nil
}

// failedRemovalJobs lists the jobs of a decommission's failing backends,
// for a retry now instead of at the next backoff.
func failedRemovalJobs(ctx context.Context, tx *store.Tx, id string) ([]int64, error) {
	dec, err := tx.Decommission(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, b := range dec.Backends {
		// A failing removal may be in an attempt right now: still failing.
		if b.State == gatehouse.StepSucceeded || (b.State != gatehouse.StepFailed && b.LastError == "") {
			continue
		}
		_, job, err := tx.RemovalStep(ctx, id, b.Backend)
		if err != nil {
			return nil, err
		}
		out = append(out, job)
	}
	if len(out) == 0 {
		return nil, gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is decommissioned and no backend's removal is failing; nothing to retry", id)
	}
	return out, nil
}

// receipt is a backend's result as one timeline line.
func receipt(backend string, removals []gatehouse.Removal) string {
	if len(removals) == 0 {
		return backend + ": held nothing of this gateway"
	}
	parts := make([]string, len(removals))
	for i, r := range removals {
		parts[i] = r.Object + " " + r.Result
	}
	return backend + ": " + strings.Join(parts, "; ")
}

// attachDecommission gives a decommissioned device its decommission.
func attachDecommission(ctx context.Context, tx *store.Tx, d *gatehouse.Device) error {
	if d.State != gatehouse.StateDecommissioned {
		return nil
	}
	dec, err := tx.Decommission(ctx, d.ID)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	dec.Name = d.Name
	d.Decommission = dec
	return nil
}

// refuseDecommissioned is the device API's answer to a decommissioned
// gateway's key: a clear, final refusal the agent prints and exits on.
func refuseDecommissioned(ctx context.Context, tx *store.Tx, d *gatehouse.Device) error {
	if d.State != gatehouse.StateDecommissioned {
		return nil
	}
	who, when := "an operator", ""
	if dec, err := tx.Decommission(ctx, d.ID); err == nil {
		who, when = dec.By, " on "+dec.At.UTC().Format("2006-01-02 15:04 UTC")
	}
	name := ""
	if d.Name != "" {
		name = " (" + d.Name + ")"
	}
	return gatehouse.Errorf(gatehouse.EGONE, "this gateway%s was decommissioned by %s%s; gatehouse will not provision this key again. "+
		"To bring the gateway back, an operator forgets it in gatehouse; it then enrolls as a new gateway", name, who, when)
}

// Forget removes a dismissed, or a decommissioned and fully removed,
// device from gatehouse: its key's next contact is a fresh enrollment. Its
// timeline stays readable, and a small record says what was forgotten, by
// whom and when; forgetting again changes nothing.
func (s *Service) Forget(ctx context.Context, actor, id string) (*gatehouse.Forgotten, error) {
	ctx = withActor(ctx, actor)
	var f *gatehouse.Forgotten
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		f, err = s.forget(ctx, tx, actor, id)
		return err
	})
	if err := s.recordRefusal(ctx, ActionDeviceForget, id, nil, err); err != nil {
		return nil, err
	}
	s.pending.forget()
	s.log.InfoContext(ctx, "device forgotten", "device", id, "by", actor)
	s.notify.Publish(id)
	return f, nil
}

func (s *Service) forget(ctx context.Context, tx *store.Tx, actor, id string) (*gatehouse.Forgotten, error) {
	d, err := tx.Device(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		if f, ferr := tx.ForgottenDevice(ctx, id); ferr == nil {
			return f, s.audit(ctx, tx, ActionDeviceForget, id, nil, map[string]any{"unchanged": "already forgotten"})
		}
	}
	if err != nil {
		return nil, err
	}
	if err := checkForgettable(ctx, tx, d); err != nil {
		return nil, err
	}
	certs, err := tx.Certificates(ctx, id)
	if err != nil {
		return nil, err
	}
	serials := make([]string, 0, len(certs))
	for _, c := range certs {
		serials = append(serials, c.Serial)
	}
	f := &gatehouse.Forgotten{DeviceID: id, Name: d.Name, MAC: d.MAC, Fingerprint: d.Fingerprint, State: d.State, By: actor, At: tx.Now()}
	if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "forgotten", Actor: actor,
		Detail: "its key and MAC enroll as a new gateway from now on"}); err != nil {
		return nil, err
	}
	if err := tx.ForgetDevice(ctx, *f); err != nil {
		return nil, err
	}
	return f, s.audit(ctx, tx, ActionDeviceForget, id, nil, map[string]any{
		"name": d.Name, "mac": d.MAC, "fingerprint": d.Fingerprint, "state": string(d.State), "certificates": serials})
}

// checkForgettable allows dismissed devices and decommissioned ones every
// backend has removed: forgetting one still in a backend would lose what
// gatehouse knows of where it is.
func checkForgettable(ctx context.Context, tx *store.Tx, d *gatehouse.Device) error {
	switch d.State {
	case gatehouse.StateDismissed:
		return nil
	case gatehouse.StateDecommissioned:
	default:
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is %s; only dismissed or decommissioned devices can be forgotten (decommission it first)", d.ID, d.State)
	}
	dec, err := tx.Decommission(ctx, d.ID)
	if err != nil {
		return err
	}
	var open []string
	for _, b := range dec.Backends {
		if b.State != gatehouse.StepSucceeded {
			open = append(open, b.Backend+" ("+removalStatus(b)+")")
		}
	}
	if len(open) > 0 {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is still being removed from %s; forget it once every backend has removed it",
			d.ID, strings.Join(open, ", "))
	}
	return nil
}

func removalStatus(b gatehouse.BackendRemoval) string {
	if b.LastError != "" {
		return string(b.State) + ": " + b.LastError
	}
	return string(b.State)
}

// noteForgotten tells a new enrollment's timeline, and the forgotten
// device's, that its key or MAC was forgotten before.
func noteForgotten(ctx context.Context, tx *store.Tx, id, fingerprint, mac string) error {
	f, err := tx.LastForgotten(ctx, fingerprint, mac)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	what := "key"
	if f.Fingerprint != fingerprint {
		what = "MAC " + mac
	}
	name := ""
	if f.Name != "" {
		name = " (" + f.Name + ")"
	}
	err = tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "forgotten_before",
		Detail: fmt.Sprintf("this %s was forgotten as device %s%s by %s at %s", what, f.DeviceID, name, f.By, f.At.Format(time.RFC3339))})
	if err != nil {
		return err
	}
	return tx.AddEvent(ctx, gatehouse.Event{DeviceID: f.DeviceID, Kind: "enrolled_again",
		Detail: fmt.Sprintf("its %s enrolled again, as new device %s", what, id)})
}

// forgottenError turns a lookup of a forgotten device into an answer that
// says so, and where its timeline still is.
func forgottenError(ctx context.Context, tx *store.Tx, id string, err error) error {
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return err
	}
	f, ferr := tx.ForgottenDevice(ctx, id)
	if ferr != nil {
		return err
	}
	return gatehouse.Errorf(gatehouse.ENOTFOUND, "device %s was forgotten by %s at %s; its timeline stays at /api/v1/devices/%s/events",
		id, f.By, f.At.Format(time.RFC3339), id)
}

// knownDevice finds a device, or a forgotten one whose timeline is kept.
func knownDevice(ctx context.Context, tx *store.Tx, id string) error {
	_, err := tx.Device(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		if _, ferr := tx.ForgottenDevice(ctx, id); ferr == nil {
			return nil
		}
	}
	return err
}
