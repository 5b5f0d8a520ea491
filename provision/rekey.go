package provision

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"gatehouse"
	"gatehouse/store"
)

// A re-key: a gateway reflashed or given new storage comes back with a new
// key and the MAC of a gateway gatehouse approved. It is never a stranger
// and never approved by itself: it waits as a candidate beside that
// gateway until an operator approves the re-key (or dismisses it). Approving
// moves the new key onto the gateway, which keeps its id, name and labels,
// and reruns every step as a re-key: the backends move the same objects
// onto the new key, and the bundle is sealed to it.

// ActionDeviceRekey is an operator approving a re-key candidate.
const ActionDeviceRekey = "device.rekey"

// Step output keys of a re-key run: recRekeyFrom marks a step that is to
// move the gateway's objects off that key (until it succeeds); a step that
// did keeps outRekeyedFrom.
const (
	recRekeyFrom   = "rekey_from"
	outRekeyedFrom = "rekeyed_from"
)

// markRekeyCandidate flags a device that has just enrolled with a new key
// as a re-key candidate when its MAC is an approved gateway's, on both
// timelines. The MAC is only a claim, so nothing changes until an operator
// compares the candidate's code and approves.
func markRekeyCandidate(ctx context.Context, tx *store.Tx, d *gatehouse.Device, keyType string) error {
	target, err := tx.RekeyTarget(ctx, d.MAC)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	gw, err := tx.Device(ctx, target)
	if err != nil {
		return err
	}
	if err := tx.SetRekeyOf(ctx, d.ID, target); err != nil {
		return err
	}
	key := keyType + " key " + d.Fingerprint[:16] + " (code " + d.VerificationCode + ")"
	if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: d.ID, Kind: "rekey_candidate",
		Detail: "re-key of " + gw.Name + ": " + key + " came with its MAC"}); err != nil {
		return err
	}
	return tx.AddEvent(ctx, gatehouse.Event{DeviceID: target, Kind: "rekey_candidate",
		Detail: "a new " + key + " enrolled with this gateway's MAC from " + d.SourceAddr + "; approve the re-key or dismiss it"})
}

// isRekeyCandidate says whether a device is a re-key candidate: what
// approves gateways without an operator (an allowlist) must leave it to one.
func isRekeyCandidate(ctx context.Context, tx *store.Tx, id string) (bool, error) {
	t, err := rekeyTargetOf(ctx, tx, id)
	return t != "", err
}

// flagRekeys fills in which gateway each candidate would re-key, and each
// gateway's pending candidates.
func flagRekeys(ctx context.Context, tx *store.Tx, ds []*gatehouse.Device) error {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	targets, err := tx.RekeyTargets(ctx, ids)
	if err != nil {
		return err
	}
	cands, err := tx.RekeyCandidates(ctx, ids)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if t, ok := targets[d.ID]; ok {
			d.RekeyOf = &t
		}
		d.RekeyCandidates = cands[d.ID]
	}
	return nil
}

// approveRekey approves a re-key when id is a candidate; handled is false
// for any other device, which Approve then treats as usual. A re-key keeps
// the gateway's name, so none may be given.
func (s *Service) approveRekey(ctx context.Context, actor, id string, a Approval) (d *gatehouse.Device, handled bool, err error) {
	var target string
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		t, err := tx.RekeyTargets(ctx, []string{id})
		if gw, ok := t[id]; ok {
			target = gw.ID
		}
		return err
	})
	if err != nil || target == "" {
		return nil, false, err
	}
	ctx = withActor(ctx, actor)
	detail := map[string]any{"candidate": id}
	err = s.db.InTx(ctx, func(tx *store.Tx) error { return s.rekeyTx(ctx, tx, actor, id, target, a, detail) })
	if err := s.recordRefusal(ctx, ActionDeviceRekey, target, detail, err); err != nil {
		return nil, true, err
	}
	s.pending.forget()
	s.cfg.Metrics.Approved(ApprovedRekey)
	s.log.InfoContext(ctx, "re-key approved", "device", target, "candidate", id, "by", actor)
	s.notify.Publish(id)
	s.notify.Publish(target)
	d, err = s.Device(ctx, target)
	return d, true, err
}

// rekeyTx moves the candidate's key onto the gateway and starts the re-key
// run, in one transaction with its audit entry.
func (s *Service) rekeyTx(ctx context.Context, tx *store.Tx, actor, id, target string, a Approval, detail map[string]any) error {
	cand, err := tx.Device(ctx, id)
	if err != nil {
		return err
	}
	gw, err := tx.Device(ctx, target)
	if err != nil {
		return err
	}
	detail["name"], detail["fingerprint"], detail["replaced"] = gw.Name, cand.Fingerprint, gw.Fingerprint
	if err := checkRekey(cand, gw, a); err != nil {
		return err
	}
	if err := s.stopStepJobs(ctx, tx, gw); err != nil {
		return err
	}
	// Keep the certificate being replaced, so it is revoked once the new
	// one is recorded even if it predates the kept-certificates table.
	if st := findStep(gw, gatehouse.StepVault); st != nil {
		if err := keepCertificate(ctx, tx, gw.ID, st.Output, gatehouse.CertFromProvision); err != nil {
			return err
		}
	}
	if err := tx.AdoptKey(ctx, gw.ID, cand); err != nil {
		return err
	}
	steps, err := s.resetSteps(ctx, tx, gw)
	if err != nil {
		return err
	}
	state := gatehouse.StateApproved
	if len(steps) == 0 {
		state = gatehouse.StateProvisioned
	}
	if err := s.setState(ctx, tx, gw, change{to: state, actor: actor}); err != nil {
		return err
	}
	ev := fmt.Sprintf("key %s (code %s) replaces key %s; the backends move %s onto it",
		cand.Fingerprint[:16], cand.VerificationCode, gw.Fingerprint[:16], gw.Name)
	if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: gw.ID, Kind: "rekey_approved", Actor: actor, Detail: ev}); err != nil {
		return err
	}
	if err := s.enqueueRekeySteps(ctx, tx, gw.ID, steps, gw.Fingerprint); err != nil {
		return err
	}
	return s.audit(ctx, tx, ActionDeviceRekey, gw.ID, nil, detail)
}

// checkRekey refuses a re-key the candidate or the gateway is not ready for.
// While the gateway is still being provisioned its steps work with the old
// key; the operator approves the re-key once they have settled.
func checkRekey(cand, gw *gatehouse.Device, a Approval) error {
	if cand.State != gatehouse.StatePending {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "re-key candidate %s is %s, not pending", cand.ID, cand.State)
	}
	if a.Name != "" {
		// Even the gateway's own name: typing a name is approving a new
		// gateway, and this one is not new.
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is a re-key candidate of %s, which keeps its name: approve it without a name to move %s onto its key, or dismiss it", cand.ID, gw.Name, gw.Name)
	}
	if len(a.Labels) > 0 {
		return gatehouse.Errorf(gatehouse.EINVALID, "device %s is a re-key of %s, which keeps its labels: approve it without labels", cand.ID, gw.Name)
	}
	switch gw.State {
	case gatehouse.StateProvisioned, gatehouse.StateConfigured, gatehouse.StateStalled, gatehouse.StateFailed:
	default:
		return gatehouse.Errorf(gatehouse.ECONFLICT, "gateway %s is %s; approve the re-key once it is provisioned or has failed", gw.Name, gw.State)
	}
	for _, st := range gw.Steps {
		if st.State == gatehouse.StepRunning && st.Name != gatehouse.StepHub {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "gateway %s has its %s step running; approve the re-key again in a moment", gw.Name, st.Name)
		}
	}
	return nil
}

// stopStepJobs cancels the gateway's step and follow-up jobs waiting to run
// (a failed step's retry, a snoozing follow-up). Were one to run anyway it
// would do nothing: the re-key's jobs supersede them.
func (s *Service) stopStepJobs(ctx context.Context, tx *store.Tx, gw *gatehouse.Device) error {
	for _, st := range gw.Steps {
		if st.JobID == 0 {
			continue
		}
		job, err := tx.Job(ctx, st.JobID)
		if err != nil {
			if isJobNotFound(err) {
				continue
			}
			return fmt.Errorf("provision: read job of step %s: %w", st.Name, err)
		}
		switch job.State {
		case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded, rivertype.JobStateRunning:
			// A running job's work has been recorded (its step is not
			// running), or it has yet to begin and will find itself
			// superseded by the re-key's job.
			continue
		}
		if _, err := tx.CancelJob(ctx, st.JobID); err != nil && !isJobNotFound(err) {
			return fmt.Errorf("provision: cancel job of step %s: %w", st.Name, err)
		}
	}
	return nil
}

func isJobNotFound(err error) bool { return errors.Is(err, rivertype.ErrNotFound) }

func isBackendNotFound(err error) bool { return errors.Is(err, gatehouse.ErrBackendNotFound) }

// resetSteps makes the gateway's steps pending again as a re-key run (each
// keeps the output naming its objects) and returns the provisioning steps
// to run. The IoT Hub follow-up starts again once they have succeeded.
func (s *Service) resetSteps(ctx context.Context, tx *store.Tx, gw *gatehouse.Device) ([]gatehouse.StepName, error) {
	steps := s.enabledSteps()
	for _, st := range gw.Steps {
		if st.Name == gatehouse.StepHub {
			if err := tx.RestartStep(ctx, gw.ID, st.Name); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range steps {
		if findStep(gw, name) == nil {
			if err := tx.CreateSteps(ctx, gw.ID, []gatehouse.StepName{name}); err != nil {
				return nil, err
			}
		} else if err := tx.RestartStep(ctx, gw.ID, name); err != nil {
			return nil, err
		}
		if err := tx.MergeStepOutput(ctx, gw.ID, name, map[string]string{recRekeyFrom: gw.Fingerprint, outRekeyedFrom: ""}); err != nil {
			return nil, err
		}
	}
	return steps, nil
}

// rekeyStepArgs is the durable job of one step of one re-key run. The
// replaced key tells runs apart: a step's first provisioning job and any
// earlier re-key's are done and must not make this one a duplicate.
type rekeyStepArgs struct {
	DeviceID string             `json:"device_id" river:"unique"`
	Step     gatehouse.StepName `json:"step" river:"unique"`
	From     string             `json:"from" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (rekeyStepArgs) Kind() string { return "rekey_step" }

// InsertOpts makes a second enqueue of the same run's step a no-op.
func (rekeyStepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type rekeyStepWorker struct {
	river.WorkerDefaults[rekeyStepArgs]
	svc *Service
}

// Work runs the step as any other: runStep sees the re-key mark.
func (w *rekeyStepWorker) Work(ctx context.Context, job *river.Job[rekeyStepArgs]) error {
	return w.svc.runStep(withJob(ctx, job.ID), job.Args.DeviceID, job.Args.Step)
}

func (s *Service) enqueueRekeySteps(ctx context.Context, tx *store.Tx, id string, steps []gatehouse.StepName, from string) error {
	for _, st := range steps {
		res, err := tx.Enqueue(ctx, rekeyStepArgs{DeviceID: id, Step: st, From: from}, nil)
		if err != nil {
			return fmt.Errorf("provision: enqueue re-key step: %w", err)
		}
		if err := tx.SetStepJob(ctx, id, st, res.Job.ID); err != nil {
			return err
		}
	}
	return nil
}

// provision runs a step's backend call: a re-key run's step moves the
// gateway's objects onto the new key where the backend can, and is marked
// so once done.
func (s *Service) provision(ctx context.Context, p gatehouse.Provisioner, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	from := in.Recorded[recRekeyFrom]
	if from == "" {
		return p.Provision(ctx, in)
	}
	r, ok := p.(gatehouse.Rekeyer)
	if !ok {
		return p.Provision(ctx, in) // nothing tied to the old key there
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		in.PreviousKey, err = tx.ReplacedKey(ctx, from)
		return err
	})
	if err != nil {
		return nil, err
	}
	res, err := r.Rekey(ctx, in)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(res.Output)
	if out == nil {
		out = map[string]string{}
	}
	out[outRekeyedFrom] = from
	return &gatehouse.StepResult{Output: out, Secrets: res.Secrets}, nil
}

// keepStepCertificate keeps the certificate a step's output holds; one a
// re-key brought replaces the others, which are revoked by a job enqueued
// here, in the transaction that records the new one.
func (s *Service) keepStepCertificate(ctx context.Context, tx *store.Tx, id string, output map[string]string) error {
	if output[outRekeyedFrom] == "" {
		return keepCertificate(ctx, tx, id, output, gatehouse.CertFromProvision)
	}
	if err := keepCertificate(ctx, tx, id, output, gatehouse.CertFromRekey); err != nil {
		return err
	}
	keep := output[gatehouse.OutSerial]
	if keep == "" {
		return nil
	}
	_, err := tx.Enqueue(ctx, revokeReplacedArgs{DeviceID: id, Keep: keep}, nil)
	if err != nil {
		return fmt.Errorf("provision: enqueue revocation of replaced certificates: %w", err)
	}
	return nil
}

// revokeReplacedArgs revokes a gateway's certificates other than Keep.
type revokeReplacedArgs struct {
	DeviceID string `json:"device_id" river:"unique"`
	Keep     string `json:"keep" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (revokeReplacedArgs) Kind() string { return "revoke_replaced_certs" }

// InsertOpts makes a second enqueue for the same kept certificate a no-op.
func (revokeReplacedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type revokeReplacedWorker struct {
	river.WorkerDefaults[revokeReplacedArgs]
	svc *Service
}

func (w *revokeReplacedWorker) Work(ctx context.Context, job *river.Job[revokeReplacedArgs]) error {
	return w.svc.revokeRekeyReplaced(ctx, job.Args.DeviceID, job.Args.Keep)
}

// revokeRekeyReplaced revokes, one by one, each kept certificate of the gateway
// not yet revoked other than keep and the one its PKI step now holds, and
// records each on the timeline. Revoking again is harmless, so a rerun
// after a crash or a lost answer finishes the list.
func (s *Service) revokeRekeyReplaced(ctx context.Context, id, keep string) error {
	rv := s.certRevoker()
	if rv == nil {
		return nil // no PKI on this server: nothing it issued to revoke
	}
	var serials []string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		certs, err := tx.Certificates(ctx, id)
		if err != nil {
			return err
		}
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		current := stepOutput(d, gatehouse.StepVault)[gatehouse.OutSerial]
		for _, c := range certs {
			if c.RevokedAt == nil && c.Serial != keep && c.Serial != current {
				serials = append(serials, c.Serial)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, serial := range serials {
		if err := s.revokeOne(ctx, rv, id, serial); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) revokeOne(ctx context.Context, rv gatehouse.CertRevoker, id, serial string) error {
	detail := "serial " + serial + ", replaced by a re-key"
	switch err := rv.RevokeCert(ctx, serial); {
	case isBackendNotFound(err):
		detail = "serial " + serial + ", replaced by a re-key; the PKI no longer holds it"
	case err != nil:
		s.log.Warn("revoking a replaced certificate failed", "device", id, "serial", serial, "err", err)
		return err
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.MarkCertRevoked(ctx, serial); err != nil {
			return err
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "certificate_revoked", Detail: detail})
	})
	if err == nil {
		s.notify.Publish(id)
	}
	return err
}

// certRevoker is the configured backend that revokes certificates, or nil.
func (s *Service) certRevoker() gatehouse.CertRevoker {
	i := slices.IndexFunc(s.cfg.Backends, func(b gatehouse.Backend) bool {
		_, ok := b.(gatehouse.CertRevoker)
		return ok
	})
	if i < 0 {
		return nil
	}
	return s.cfg.Backends[i].(gatehouse.CertRevoker)
}

type jobKey struct{}

// withJob tells the step code which job it runs in.
func withJob(ctx context.Context, id int64) context.Context {
	return context.WithValue(ctx, jobKey{}, id)
}

// superseded says whether the job ctx runs in is no longer the one a
// device's step belongs to: a re-key, or a restarted follow-up, enqueued a
// new one. Checked in the transaction that begins or ends the step, so an
// old job that wakes late does nothing.
func superseded(ctx context.Context, d *gatehouse.Device, name gatehouse.StepName) bool {
	id, ok := ctx.Value(jobKey{}).(int64)
	st := findStep(d, name)
	return ok && st != nil && st.JobID != 0 && st.JobID != id
}

// rekeyTargetOf is the id of the gateway a device is a re-key candidate
// of, or "".
func rekeyTargetOf(ctx context.Context, tx *store.Tx, id string) (string, error) {
	t, err := tx.RekeyTargets(ctx, []string{id})
	return t[id].ID, err
}

func publishIf(n Notifier, id string) {
	if id != "" {
		n.Publish(id)
	}
}

// refuseRekeyCandidate keeps every approval by name (an operator's, an
// allowlist's, a bulk one's) off a re-key candidate: only approving the
// re-key itself may take it.
func refuseRekeyCandidate(ctx context.Context, tx *store.Tx, d *gatehouse.Device) error {
	target, err := rekeyTargetOf(ctx, tx, d.ID)
	if err != nil || target == "" {
		return err
	}
	return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is a re-key candidate of gateway %s: approve it without a name to move that gateway onto its key, or dismiss it", d.ID, target)
}
