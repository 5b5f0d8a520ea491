package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/store"
)

// ListFilter selects devices for an operator.
type ListFilter struct {
	State gatehouse.State
	// Search matches name, hostname, MAC and fingerprint, and the
	// verification code however it is spaced ("557 546", "557-546").
	Search string
	Seen   string // "active": seen within ActiveWindow; "silent": not since
	Sort   string // a store.DeviceSort; default newest first
	Offset int
	Limit  int // default 100, at most 1000
	// Counts asks for DeviceList.Counts too.
	Counts bool
}

// ActiveWindow is how recently a gateway must have been heard from to count
// as active. Waiting agents poll every 30 s, and last-seen is written at
// most every 30 s, so two minutes of silence means the box is gone.
const ActiveWindow = 2 * time.Minute

// DeviceList is one page of devices and how many match in all.
type DeviceList struct {
	Devices []*gatehouse.Device `json:"devices"`
	Total   int                 `json:"total"`
	// PendingTotal is how many gateways wait for approval, whatever the
	// filter, and PendingCap how many may: at the cap new gateways are
	// refused, so the page warns operators as it nears.
	PendingTotal int `json:"pending_total"`
	PendingCap   int `json:"pending_cap"`
	// Counts, when asked for, is how many match the filter in each state,
	// whatever its state: what choosing each state would list.
	Counts map[gatehouse.State]int `json:"counts,omitempty"`
}

// ListDevices returns a page of devices, newest first unless f.Sort says
// otherwise.
func (s *Service) ListDevices(ctx context.Context, f ListFilter) (*DeviceList, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 || f.Offset < 0 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "limit must be 1-1000 and offset not negative")
	}
	sf, err := storeFilter(f)
	if err != nil {
		return nil, err
	}
	var out DeviceList
	err = s.db.View(ctx, func(tx *store.Tx) error {
		if err := listPage(ctx, tx, sf, f.Counts, &out); err != nil {
			return err
		}
		if err := s.countPending(ctx, tx, sf, &out); err != nil {
			return err
		}
		if err := s.attachSteps(ctx, tx, out.Devices); err != nil {
			return err
		}
		return flagDuplicates(ctx, tx, out.Devices)
	})
	if out.Devices == nil {
		out.Devices = []*gatehouse.Device{}
	}
	return &out, err
}

// listPage reads a page and its total, which the counts give when asked
// for (saving one count of the matching devices).
func listPage(ctx context.Context, tx *store.Tx, sf store.DeviceFilter, counts bool, out *DeviceList) error {
	var err error
	if !counts {
		out.Devices, out.Total, err = tx.Devices(ctx, sf)
		return err
	}
	if out.Counts, err = tx.DeviceCounts(ctx, sf); err != nil {
		return err
	}
	for st, n := range out.Counts {
		if sf.State == "" || st == sf.State {
			out.Total += n
		}
	}
	out.Devices, err = tx.DevicePage(ctx, sf)
	return err
}

// storeFilter checks an operator's filter and makes it the store's.
func storeFilter(f ListFilter) (store.DeviceFilter, error) {
	if f.State != "" && !f.State.Valid() {
		return store.DeviceFilter{}, gatehouse.Errorf(gatehouse.EINVALID, "unknown state %q", f.State)
	}
	if !store.DeviceSort(f.Sort).Valid() {
		return store.DeviceFilter{}, gatehouse.Errorf(gatehouse.EINVALID,
			"sort must be name, state, last_seen or hub, optionally with a leading '-' for descending; not %q", f.Sort)
	}
	sf := store.DeviceFilter{State: f.State, Search: f.Search, SearchCode: protocol.NormalizeCode(f.Search),
		Sort: store.DeviceSort(f.Sort), Offset: f.Offset, Limit: f.Limit}
	switch f.Seen {
	case "":
	case "active":
		sf.SeenAfter = time.Now().Add(-ActiveWindow)
	case "silent":
		sf.SeenBefore = time.Now().Add(-ActiveWindow)
	default:
		return store.DeviceFilter{}, gatehouse.Errorf(gatehouse.EINVALID, "seen must be active or silent, not %q", f.Seen)
	}
	return sf, nil
}

// exportBatch is how many devices one transaction of an export reads: on
// SQLite each holds the one connection enrollments wait for, so a fleet's
// export takes many short turns rather than one long one.
const exportBatch = 500

// ExportDevices calls each for every device f matches (not a page: f's
// Offset and Limit are not used), in f's order, as ListDevices shows them
// (hub, last step; no step outputs). It reads in batches, each in a
// transaction of its own, walking by cursor so a device added or removed
// meanwhile is neither repeated nor makes another be skipped. each may
// stop the export by returning an error, which ExportDevices returns.
func (s *Service) ExportDevices(ctx context.Context, f ListFilter, each func(*gatehouse.Device) error) error {
	f.Offset, f.Limit = 0, exportBatch
	sf, err := storeFilter(f)
	if err != nil {
		return err
	}
	var cur *store.DeviceCursor
	for {
		var batch []*gatehouse.Device
		err := s.db.View(ctx, func(tx *store.Tx) error {
			var err error
			if batch, cur, err = tx.DevicesAfter(ctx, sf, cur); err != nil {
				return err
			}
			return s.attachSteps(ctx, tx, batch)
		})
		if err != nil {
			return err
		}
		for _, d := range batch {
			if err := each(d); err != nil {
				return err
			}
		}
		if cur == nil {
			return nil
		}
	}
}

// countPending fills in the pending queue's size, which the Pending page's
// own listing has counted already.
func (s *Service) countPending(ctx context.Context, tx *store.Tx, f store.DeviceFilter, out *DeviceList) error {
	out.PendingCap = s.cfg.PendingCap
	if f == (store.DeviceFilter{State: gatehouse.StatePending, Offset: f.Offset, Limit: f.Limit}) {
		out.PendingTotal = out.Total
	} else {
		var err error
		if out.PendingTotal, err = tx.CountPending(ctx); err != nil {
			return err
		}
	}
	s.pending.set(out.PendingTotal)
	return nil
}

// attachSteps gives each listed device its steps, for its hub and last step,
// without their outputs (certificates and such belong on the device page).
func (s *Service) attachSteps(ctx context.Context, tx *store.Tx, ds []*gatehouse.Device) error {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	steps, err := tx.StepsOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, d := range ds {
		d.Steps = steps[d.ID]
		s.fillDevice(d)
		for i := range d.Steps {
			d.Steps[i].Output, d.Steps[i].Sealed = nil, nil
		}
	}
	return nil
}

// Device returns one device with its steps, flagged like a listed one.
func (s *Service) Device(ctx context.Context, id string) (*gatehouse.Device, error) {
	var d *gatehouse.Device
	err := s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		if d, err = tx.Device(ctx, id); err != nil {
			return forgottenError(ctx, tx, id, err)
		}
		s.fillDevice(d)
		if err := attachDecommission(ctx, tx, d); err != nil {
			return err
		}
		return flagDuplicates(ctx, tx, []*gatehouse.Device{d})
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Events returns a device's timeline.
func (s *Service) Events(ctx context.Context, id string) ([]gatehouse.Event, error) {
	var out []gatehouse.Event
	err := s.db.View(ctx, func(tx *store.Tx) error {
		if err := knownDevice(ctx, tx, id); err != nil {
			return err
		}
		var err error
		out, err = tx.Events(ctx, id)
		return err
	})
	return out, err
}

// Approval is an operator's decision to provision a pending device.
type Approval struct {
	Name   string
	Labels map[string]string // optional; pick and fill its deployment manifest
}

// Approve names a pending device and enqueues its provisioning, in one
// transaction: either both happen or neither does. The audit entry is
// written in that transaction too; a refusal gets one of its own.
func (s *Service) Approve(ctx context.Context, actor, id string, a Approval) (*gatehouse.Device, error) {
	d, err := s.decideApproval(ctx, actor, id, a)
	if err != nil || d != nil {
		return d, err
	}
	return s.Device(ctx, id)
}

// decideApproval is Approve without reading the device back, for callers
// that do not show it (a bulk operation); it returns the device only when
// a re-key approval answered with it.
func (s *Service) decideApproval(ctx context.Context, actor, id string, a Approval) (*gatehouse.Device, error) {
	if d, rekey, err := s.approveRekey(ctx, actor, id, a); rekey || err != nil {
		return d, err
	}
	ctx = withActor(ctx, actor)
	err := s.approve(ctx, actor, id, a)
	if err := s.recordRefusal(ctx, ActionDeviceApprove, id, approvalDetail(a, nil), err); err != nil {
		return nil, err
	}
	s.pending.forget()
	s.cfg.Metrics.Approved(approvalSource(ctx))
	s.log.InfoContext(ctx, "device approved", "device", id, "name", a.Name, "by", actor)
	s.notify.Publish(id)
	return nil, nil
}

func (s *Service) approve(ctx context.Context, actor, id string, a Approval) error {
	name := a.Name
	if err := gatehouse.ValidateName(name); err != nil {
		return err
	}
	if err := gatehouse.ValidateLabels(a.Labels); err != nil {
		return err
	}
	if err := s.precheckApproval(ctx, id, name); err != nil {
		return err
	}
	if err := s.checkNameFree(ctx, name); err != nil {
		return err
	}
	steps := s.enabledSteps()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		if err := checkApprovable(ctx, tx, d, name); err != nil {
			return err
		}
		if err := s.approveTx(ctx, tx, d, actor, name, a.Labels, steps); err != nil {
			return err
		}
		return s.audit(ctx, tx, ActionDeviceApprove, id, nil, approvalDetail(a, d))
	})
	if errors.Is(err, store.ErrUnique) {
		return s.nameTaken(ctx, name)
	}
	return err
}

// approvalDetail is what the audit log keeps of an approval: the name, the
// labels, and once known the key that was approved.
func approvalDetail(a Approval, d *gatehouse.Device) map[string]any {
	detail := map[string]any{"name": a.Name}
	if len(a.Labels) > 0 {
		detail["labels"] = a.Labels
	}
	if d != nil {
		detail["fingerprint"] = d.Fingerprint
	}
	return detail
}

// precheckApproval refuses what gatehouse alone can refuse before any
// backend is asked about the name. The transaction checks again.
func (s *Service) precheckApproval(ctx context.Context, id, name string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		return checkApprovable(ctx, tx, d, name)
	})
}

func checkApprovable(ctx context.Context, tx *store.Tx, d *gatehouse.Device, name string) error {
	if err := refuseRekeyCandidate(ctx, tx, d); err != nil {
		return err
	}
	if d.State != gatehouse.StatePending {
		if d.Name != "" {
			return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is %s (named %q), not pending", d.ID, d.State, d.Name)
		}
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is %s, not pending", d.ID, d.State)
	}
	other, err := tx.DeviceByName(ctx, name)
	if err == nil {
		return nameTakenBy(name, other)
	}
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return err
	}
	return allowlistNameFree(ctx, tx, d, name)
}

func (s *Service) approveTx(ctx context.Context, tx *store.Tx, d *gatehouse.Device, actor, name string, labels map[string]string, steps []gatehouse.StepName) error {
	state, now := gatehouse.StateApproved, tx.Now()
	if len(steps) == 0 {
		state = gatehouse.StateProvisioned
	}
	err := s.setState(ctx, tx, d, change{to: state, actor: actor,
		update: store.DeviceUpdate{Name: &name, ApprovedBy: &actor, ApprovedAt: &now, Labels: labels}})
	if err != nil {
		return err
	}
	if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: d.ID, Kind: "approved", Actor: actor, Detail: "named " + name}); err != nil {
		return err
	}
	if err := tx.CreateSteps(ctx, d.ID, steps); err != nil {
		return err
	}
	return s.enqueueSteps(ctx, tx, d.ID, steps)
}

func (s *Service) enqueueSteps(ctx context.Context, tx *store.Tx, id string, steps []gatehouse.StepName) error {
	if len(steps) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, 0, len(steps))
	for _, st := range steps {
		params = append(params, river.InsertManyParams{Args: stepArgs{DeviceID: id, Step: st}})
	}
	res, err := tx.EnqueueMany(ctx, params)
	if err != nil {
		return fmt.Errorf("provision: enqueue steps: %w", err)
	}
	for i, r := range res {
		if err := tx.SetStepJob(ctx, id, steps[i], r.Job.ID); err != nil {
			return err
		}
	}
	return nil
}

// Dismiss refuses a pending device. Dismissing it again changes nothing
// (its audit entry says so).
func (s *Service) Dismiss(ctx context.Context, actor, id string) (*gatehouse.Device, error) {
	return s.move(ctx, actor, id, move{
		action: ActionDeviceDismiss, from: gatehouse.StatePending, to: gatehouse.StateDismissed,
		event: gatehouse.Event{Kind: "dismissed"}, refusal: "only pending devices can be dismissed",
		done: "device dismissed",
	})
}

// Restore moves a dismissed device back to pending: an operator dismissed
// it by mistake, or it was not ready. Its next contact finds it waiting;
// restoring a pending device again changes nothing.
func (s *Service) Restore(ctx context.Context, actor, id string) (*gatehouse.Device, error) {
	return s.move(ctx, actor, id, move{
		action: ActionDeviceRestore, from: gatehouse.StateDismissed, to: gatehouse.StatePending,
		event: gatehouse.Event{Kind: "restored", Detail: "moved back to pending"}, refusal: "only dismissed devices can be moved back to pending",
		done: "device moved back to pending",
	})
}

// move is an operator's decision that takes a device from one state to
// another and back: dismissing and restoring.
type move struct {
	action   string
	from, to gatehouse.State
	event    gatehouse.Event // its kind and detail; the rest is filled in
	refusal  string          // why other states are refused
	done     string          // the log line
}

// move applies m in one transaction with its timeline event and audit
// entry. A device already in m.to is left as it is, which the audit entry
// says; a refusal gets an entry of its own.
func (s *Service) move(ctx context.Context, actor, id string, m move) (*gatehouse.Device, error) {
	ctx = withActor(ctx, actor)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		switch d.State {
		case m.to:
			return s.audit(ctx, tx, m.action, id, nil, map[string]any{"unchanged": "already " + string(m.to)})
		case m.from:
		default:
			return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is %s; %s", id, d.State, m.refusal)
		}
		if err := s.setState(ctx, tx, d, change{to: m.to, actor: actor}); err != nil {
			return err
		}
		ev := m.event
		ev.DeviceID, ev.Actor = id, actor
		if err := tx.AddEvent(ctx, ev); err != nil {
			return err
		}
		return s.audit(ctx, tx, m.action, id, nil, map[string]any{"fingerprint": d.Fingerprint, "mac": d.MAC})
	})
	if err := s.recordRefusal(ctx, m.action, id, nil, err); err != nil {
		return nil, err
	}
	s.pending.forget()
	s.log.InfoContext(ctx, m.done, "device", id, "by", actor)
	s.notify.Publish(id)
	return s.Device(ctx, id)
}
