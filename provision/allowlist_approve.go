package provision

import (
	"context"
	"fmt"
	"strings"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/store"
)

// claimAllowlisted runs in the transaction that creates a device for a new
// key: if the device's MAC is on the allowlist and its entry unused, the
// entry is pinned to this device and key, and a durable job approves it.
// A used entry is never claimed again, so a second key for a listed MAC is
// never approved from the list; it waits for an operator like any other.
func (s *Service) claimAllowlisted(ctx context.Context, tx *store.Tx, id, mac, fingerprint string) error {
	e, err := tx.AllowlistEntry(ctx, mac)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil
	}
	if err != nil || e.Used() {
		return err
	}
	// A MAC some other device enrolled with is a reflashed gateway or an
	// impostor: an operator must tell which.
	if other, err := tx.DeviceWithMAC(ctx, mac, id); err != nil || other != "" {
		return err
	}
	claimed, err := tx.ClaimAllowlistEntry(ctx, mac, id, fingerprint)
	if err != nil || !claimed {
		return err
	}
	detail := fmt.Sprintf("MAC %s is on the allowlist as %s (imported by %s); key %s pinned to it",
		mac, e.Name, e.ImportedBy, fingerprint[:min(16, len(fingerprint))])
	if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "allowlisted", Actor: "allowlist", Detail: detail}); err != nil {
		return err
	}
	if _, err := tx.Enqueue(ctx, allowlistArgs{DeviceID: id}, nil); err != nil {
		return fmt.Errorf("provision: enqueue allowlist approval: %w", err)
	}
	return nil
}

// allowlistArgs is the durable job approving a device its allowlist entry
// was claimed by.
type allowlistArgs struct {
	DeviceID string `json:"device_id" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (allowlistArgs) Kind() string { return "allowlist_approve" }

// InsertOpts makes a second enqueue for a device a no-op.
func (allowlistArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type allowlistWorker struct {
	river.WorkerDefaults[allowlistArgs]
	svc *Service
}

func (w *allowlistWorker) Work(ctx context.Context, job *river.Job[allowlistArgs]) error {
	return w.svc.approveListed(ctx, job.Args.DeviceID)
}

// allowlistActor is who the timeline and audit log say approved a device
// from the allowlist.
func allowlistActor(e *gatehouse.AllowlistEntry) string {
	return "allowlist (imported by " + e.ImportedBy + ")"
}

// approveListed approves a device under the name its allowlist entry
// gives, once every backend says the name is free, exactly as an operator's
// approval would be. While a backend cannot answer the job retries and the
// device waits as pending with the reason shown. Approving without the
// check could hand the gateway another one's DPS enrollment, since the
// steps adopt an object already holding the name. A name a backend holds
// leaves the device pending for an operator; nothing is lost either way.
func (s *Service) approveListed(ctx context.Context, id string) error {
	d, e, err := s.listedPending(ctx, id)
	if err != nil || d == nil {
		return err
	}
	actor := allowlistActor(e)
	ctx = withActor(ctx, actor)
	if err := s.checkNameFree(ctx, e.Name); err != nil {
		return s.holdListed(ctx, d, e, err)
	}
	steps := s.enabledSteps()
	approved := false
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		d, e, err := listedPendingTx(ctx, tx, id)
		if err != nil || d == nil {
			return err
		}
		if err := checkApprovable(ctx, tx, d, e.Name); err != nil {
			return err
		}
		if err := s.approveTx(ctx, tx, d, actor, e.Name, e.Labels, steps); err != nil {
			return err
		}
		approved = true
		detail := approvalDetail(Approval{Name: e.Name, Labels: e.Labels}, d)
		detail["allowlist"] = e.MAC
		return s.audit(ctx, tx, ActionDeviceApprove, id, nil, detail)
	})
	if gatehouse.ErrorCode(err) == gatehouse.ECONFLICT {
		return s.holdListed(ctx, d, e, err)
	}
	if err != nil || !approved {
		return err
	}
	s.pending.forget()
	s.cfg.Metrics.Approved(ApprovedByAllowlist)
	s.log.Info("device approved from the allowlist", "device", id, "name", e.Name, "by", actor)
	s.notify.Publish(id)
	return nil
}

// listedPending returns a device still waiting for its allowlist approval
// and its entry, or nil when there is nothing to do: an operator approved
// or dismissed it meanwhile, or removed the entry.
func (s *Service) listedPending(ctx context.Context, id string) (*gatehouse.Device, *gatehouse.AllowlistEntry, error) {
	var d *gatehouse.Device
	var e *gatehouse.AllowlistEntry
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		d, e, err = listedPendingTx(ctx, tx, id)
		return err
	})
	return d, e, err
}

func listedPendingTx(ctx context.Context, tx *store.Tx, id string) (*gatehouse.Device, *gatehouse.AllowlistEntry, error) {
	d, err := tx.Device(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, nil, nil
	}
	if err != nil || d.State != gatehouse.StatePending {
		return nil, nil, err
	}
	e, err := tx.AllowlistByDevice(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil, nil, nil
	}
	if err != nil || e.Fingerprint != d.Fingerprint {
		return nil, nil, err
	}
	return d, e, nil
}

// holdListed leaves a listed device pending with the reason it was not
// approved. A taken name is final: the job ends and the audit log records
// the refusal. A backend that could not answer is retried by the job.
func (s *Service) holdListed(ctx context.Context, d *gatehouse.Device, e *gatehouse.AllowlistEntry, cause error) error {
	final := gatehouse.ErrorCode(cause) == gatehouse.ECONFLICT
	reason := fmt.Sprintf("on the allowlist as %s, but %s; retrying", e.Name, strings.TrimSuffix(gatehouse.ErrorMessage(cause), "; nothing was changed, try again"))
	if final {
		reason = fmt.Sprintf("on the allowlist as %s, but %s; approve it under another name or dismiss it", e.Name, gatehouse.ErrorMessage(cause))
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.Device(ctx, d.ID)
		if err != nil || cur.State != gatehouse.StatePending || cur.Reason == reason {
			return err
		}
		if err := s.setState(ctx, tx, cur, change{to: gatehouse.StatePending, reason: reason, actor: allowlistActor(e)}); err != nil {
			return err
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: d.ID, Kind: "allowlist_held", Actor: allowlistActor(e), Detail: reason})
	})
	if err != nil {
		return err
	}
	s.notify.Publish(d.ID)
	if !final {
		return cause
	}
	detail := approvalDetail(Approval{Name: e.Name, Labels: e.Labels}, d)
	detail["allowlist"] = e.MAC
	s.recordRefusal(ctx, ActionDeviceApprove, d.ID, detail, cause)
	return river.JobCancel(cause)
}
