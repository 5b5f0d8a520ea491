package provision

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gatehouse"
	"gatehouse/store"
)

// Edit is an operator's change to an approved gateway. A nil field is left
// as it is; an empty label map removes every label.
type Edit struct {
	Name   *string
	Labels *map[string]string
}

// Update renames or relabels an approved gateway. A rename reaches every
// backend holding the gateway first, and is refused as a whole, naming the
// backend, when one of them cannot rename; new labels re-apply the
// deployment manifest of a configured gateway, since templates read them.
func (s *Service) Update(ctx context.Context, actor, id string, e Edit) (*gatehouse.Device, error) {
	ctx = withActor(ctx, actor)
	err := s.update(ctx, actor, id, e)
	if err := s.recordRefusal(ctx, ActionDeviceUpdate, id, editDetail(e), err); err != nil {
		return nil, err
	}
	s.notify.Publish(id)
	return s.Device(ctx, id)
}

func (s *Service) update(ctx context.Context, actor, id string, e Edit) error {
	d, err := s.editable(ctx, id, e)
	if err != nil {
		return err
	}
	if e.Name != nil && *e.Name == d.Name {
		e.Name = nil
	}
	if e.Labels != nil && maps.Equal(*e.Labels, d.Labels) {
		e.Labels = nil
	}
	if e.Name == nil && e.Labels == nil {
		return s.db.InTx(ctx, func(tx *store.Tx) error {
			return s.audit(ctx, tx, ActionDeviceUpdate, id, nil, map[string]any{"unchanged": "same name and labels"})
		})
	}
	if e.Name != nil {
		if err := s.renameInBackends(ctx, d, *e.Name); err != nil {
			return err
		}
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error { return s.applyEdit(ctx, tx, actor, id, d, e) })
	if errors.Is(err, store.ErrUnique) {
		return s.nameTaken(ctx, *e.Name)
	}
	if err == nil {
		s.log.InfoContext(ctx, "device updated", "device", id, "by", actor)
	}
	return err
}

// editable checks the edit and that the device has a name and labels to
// change: a pending gateway gets both when it is approved.
func (s *Service) editable(ctx context.Context, id string, e Edit) (*gatehouse.Device, error) {
	if e.Name == nil && e.Labels == nil {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "give a new name, new labels, or both")
	}
	if e.Name != nil {
		if err := gatehouse.ValidateName(*e.Name); err != nil {
			return nil, err
		}
	}
	if e.Labels != nil {
		if err := gatehouse.ValidateLabels(*e.Labels); err != nil {
			return nil, err
		}
	}
	d, err := s.Device(ctx, id)
	if err != nil {
		return nil, err
	}
	return d, editableState(d)
}

func editableState(d *gatehouse.Device) error {
	switch d.State {
	case gatehouse.StatePending, gatehouse.StateDismissed:
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is %s; a gateway gets its name and labels when it is approved", d.ID, d.State)
	case gatehouse.StateDecommissioned:
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s is decommissioned; it can no longer be changed", d.ID)
	}
	return nil
}

// renameInBackends refuses the rename before changing anything when a
// backend holding the gateway cannot rename, or the name is taken
// anywhere; otherwise it renames in each backend that can.
func (s *Service) renameInBackends(ctx context.Context, d *gatehouse.Device, name string) error {
	var renamers []gatehouse.Renamer
	var refusals []string
	for _, b := range s.holders() {
		switch r := b.(type) {
		case gatehouse.Renamer:
			renamers = append(renamers, r)
		case gatehouse.FixedName:
			refusals = append(refusals, b.Name()+": "+r.FixedNameReason())
		default:
			refusals = append(refusals, b.Name()+": cannot rename what it holds for a gateway")
		}
	}
	if len(refusals) > 0 {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "cannot rename %q to %q: %s", d.Name, name, strings.Join(refusals, "; "))
	}
	if err := s.nameFreeInGatehouse(ctx, d, name); err != nil {
		return err
	}
	// A renamer checks the name itself, since after a lost answer its own
	// object may hold the new name already.
	if err := s.checkNameFreeIn(ctx, name, s.nonRenamers()); err != nil {
		return err
	}
	for _, r := range renamers {
		in, err := s.stepInput(ctx, d.ID, stepOf(r))
		if err != nil {
			return err
		}
		if err := r.Rename(ctx, in, name); err != nil {
			return fmt.Errorf("rename in %s: %w; the name in gatehouse is unchanged, try again", r.Name(), err)
		}
	}
	return nil
}

// holders are the configured backends that make an object for a gateway:
// the provisioners, and the follower when it follows.
func (s *Service) holders() []gatehouse.Backend {
	var out []gatehouse.Backend
	for _, p := range s.provisioners() {
		out = append(out, p)
	}
	if f := s.follower(); f != nil {
		out = append(out, f)
	}
	return out
}

func (s *Service) nonRenamers() []gatehouse.Backend {
	var out []gatehouse.Backend
	for _, b := range s.cfg.Backends {
		if _, ok := b.(gatehouse.Renamer); !ok {
			out = append(out, b)
		}
	}
	return out
}

// stepInput is what a backend knows of a device outside a step's run: the
// device, its key and what its step recorded.
func (s *Service) stepInput(ctx context.Context, id string, name gatehouse.StepName) (*gatehouse.StepInput, error) {
	var in *gatehouse.StepInput
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		d, err := tx.Device(ctx, id)
		if err != nil {
			return err
		}
		k, err := tx.FindKey(ctx, d.Fingerprint)
		if err != nil {
			return err
		}
		in = s.inputFor(d, k, name)
		return nil
	})
	return in, err
}

func (s *Service) nameFreeInGatehouse(ctx context.Context, d *gatehouse.Device, name string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		other, err := tx.DeviceByName(ctx, name)
		switch {
		case err == nil:
			return nameTakenBy(name, other)
		case gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND:
			return allowlistNameFree(ctx, tx, d, name)
		}
		return err
	})
}

// applyEdit writes the edit with its timeline entries and audit entry,
// checking again that the device is where update found it.
func (s *Service) applyEdit(ctx context.Context, tx *store.Tx, actor, id string, before *gatehouse.Device, e Edit) error {
	d, err := tx.Device(ctx, id)
	if err != nil {
		return err
	}
	// Provisioning moving on meanwhile (approved, provisioning,
	// provisioned) is no conflict: the edit applies to whatever state the
	// gateway is in now. A rename or a decommission meanwhile is.
	if d.Name != before.Name {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device %s was renamed to %q while it was being edited; look again and retry", id, d.Name)
	}
	if err := editableState(d); err != nil {
		return err
	}
	if e.Name != nil {
		if err := allowlistNameFree(ctx, tx, d, *e.Name); err != nil {
			return err
		}
	}
	u := store.DeviceUpdate{Name: e.Name}
	if e.Labels != nil {
		u.Labels = *e.Labels
		if u.Labels == nil {
			u.Labels = map[string]string{}
		}
	}
	if err := tx.UpdateDevice(ctx, id, u); err != nil {
		return err
	}
	for _, ev := range editEvents(d, e) {
		ev.DeviceID, ev.Actor = id, actor
		if err := tx.AddEvent(ctx, ev); err != nil {
			return err
		}
	}
	if e.Labels != nil && d.State == gatehouse.StateConfigured && s.followEnabled() {
		if err := s.reapplyManifest(ctx, tx, d, actor); err != nil {
			return err
		}
	}
	return s.audit(ctx, tx, ActionDeviceUpdate, id, nil, editDetail(e))
}

func editEvents(d *gatehouse.Device, e Edit) []gatehouse.Event {
	var out []gatehouse.Event
	if e.Name != nil {
		out = append(out, gatehouse.Event{Kind: "renamed", Detail: d.Name + " → " + *e.Name})
	}
	if e.Labels != nil {
		out = append(out, gatehouse.Event{Kind: "labels_changed", Detail: labelText(d.Labels) + " → " + labelText(*e.Labels)})
	}
	return out
}

// labelText writes labels sorted, so the timeline reads the same each time.
func labelText(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, " ")
}

// reapplyManifest runs the IoT Hub follow-up again so the manifest is
// rendered with the new labels; the gateway is provisioned until it is done.
func (s *Service) reapplyManifest(ctx context.Context, tx *store.Tx, d *gatehouse.Device, actor string) error {
	if err := tx.ResetStep(ctx, d.ID, gatehouse.StepHub); err != nil {
		return err
	}
	return s.restartFollowUp(ctx, tx, d, actor)
}

func editDetail(e Edit) map[string]any {
	detail := map[string]any{}
	if e.Name != nil {
		detail["name"] = *e.Name
	}
	if e.Labels != nil {
		detail["labels"] = *e.Labels
	}
	return detail
}
