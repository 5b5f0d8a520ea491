package azure

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"gatehouse"
	"gatehouse/manifest"
	"gatehouse/protocol"
)

// DPSBackend provisions gateways into Azure DPS: one individual enrollment
// with symmetric keys per gateway, registration id = device id = name.
type DPSBackend struct{ api gatehouse.DPS }

var (
	_ gatehouse.Provisioner    = (*DPSBackend)(nil)
	_ gatehouse.Decommissioner = (*DPSBackend)(nil)
)

// NewDPSBackend provisions into api, a *DPS or a simulator.
func NewDPSBackend(api gatehouse.DPS) *DPSBackend { return &DPSBackend{api: api} }

// Name implements gatehouse.Backend.
func (b *DPSBackend) Name() string { return "dps" }

// Step implements gatehouse.Provisioner.
func (b *DPSBackend) Step() gatehouse.StepName { return gatehouse.StepDPS }

// NameTaken reports an enrollment that already uses the name.
func (b *DPSBackend) NameTaken(ctx context.Context, name string) ([]string, error) {
	_, err := b.api.GetEnrollment(ctx, name)
	return taken("dps", err)
}

// taken turns a lookup's error into an answer: not found means free.
func taken(where string, err error) ([]string, error) {
	switch {
	case errors.Is(err, gatehouse.ErrBackendNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return []string{where}, nil
}

// Check proves the connection string works.
func (b *DPSBackend) Check(ctx context.Context) ([]string, error) {
	return nil, check(ctx, b.api)
}

func check(ctx context.Context, api any) error {
	if c, ok := api.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	return nil
}

// Provision creates the enrollment, or adopts the one an earlier attempt
// created (its answer may have been lost), so the keys never change under
// the gateway.
func (b *DPSBackend) Provision(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	name := in.Device.Name
	e, err := b.api.GetEnrollment(ctx, name)
	if errors.Is(err, gatehouse.ErrBackendNotFound) {
		e, err = b.create(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	if e.RegistrationID != name || e.PrimaryKey == "" {
		return nil, fmt.Errorf("dps: enrollment for %q came back as %q without its keys; retrying", name, e.RegistrationID)
	}
	return &gatehouse.StepResult{
		Output:  map[string]string{gatehouse.OutDPSIDScope: b.api.IDScope(), gatehouse.OutDPSRegistrationID: e.RegistrationID},
		Secrets: map[string][]byte{protocol.FieldDPSPrimaryKey: []byte(e.PrimaryKey)},
	}, nil
}

func (b *DPSBackend) create(ctx context.Context, name string) (gatehouse.Enrollment, error) {
	e := gatehouse.Enrollment{RegistrationID: name, DeviceID: name, IoTEdge: true,
		PrimaryKey: newSymmetricKey(), SecondaryKey: newSymmetricKey()}
	created, err := b.api.CreateEnrollment(ctx, e)
	if errors.Is(err, gatehouse.ErrBackendExists) {
		// Lost a race with ourselves: take the enrollment that won.
		return b.api.GetEnrollment(ctx, name)
	}
	return created, err
}

// newSymmetricKey is a DPS symmetric key: base64 of 32 random bytes.
func newSymmetricKey() string {
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// Decommission deletes the gateway's enrollment, so it cannot register
// again, then its registration state record. The enrollment is named for
// the gateway (approval checked the name was free in DPS), so one whose
// step never recorded it, its answer lost, is still found.
func (b *DPSBackend) Decommission(ctx context.Context, in *gatehouse.StepInput, dryRun bool) ([]gatehouse.Removal, error) {
	id := cmp.Or(in.Recorded[gatehouse.OutDPSRegistrationID], in.Device.Name)
	if id == "" {
		return nil, nil
	}
	enrollment, err := gatehouse.RemoveLooked(b.Name(), "enrollment "+id, gatehouse.RemovalRemoved, dryRun,
		func() error { _, err := b.api.GetEnrollment(ctx, id); return err },
		func() error { return b.api.DeleteEnrollment(ctx, id) })
	if err != nil {
		return nil, err
	}
	registration, err := gatehouse.RemoveLooked(b.Name(), "registration state "+id, gatehouse.RemovalRemoved, dryRun,
		func() error { _, err := b.api.Registration(ctx, id); return err },
		func() error { return b.api.DeleteRegistration(ctx, id) })
	if err != nil {
		return nil, err
	}
	return append(enrollment, registration...), nil
}

// Manifests renders a gateway's IoT Edge deployment manifest; a
// *manifest.Set does.
type Manifests interface {
	Render(d manifest.Data) (json.RawMessage, error)
}

// HubBackend finishes a provisioned gateway's cloud side: it waits until
// DPS has assigned the gateway to an IoT Hub, then applies its deployment
// manifest there.
type HubBackend struct {
	hub       gatehouse.IoTHub
	dps       gatehouse.DPS
	manifests Manifests
}

var (
	_ gatehouse.Follower       = (*HubBackend)(nil)
	_ gatehouse.Decommissioner = (*HubBackend)(nil)
)

// NewHubBackend follows gateways through dps into the hubs of hub. Without
// dps or manifests it only checks names.
func NewHubBackend(hub gatehouse.IoTHub, dps gatehouse.DPS, m Manifests) *HubBackend {
	return &HubBackend{hub: hub, dps: dps, manifests: m}
}

// Name implements gatehouse.Backend.
func (b *HubBackend) Name() string { return "iothub" }

// Step implements gatehouse.Follower.
func (b *HubBackend) Step() gatehouse.StepName { return gatehouse.StepHub }

// Follows says whether the follow-up can run: it needs DPS to learn the hub
// and a manifest to apply.
func (b *HubBackend) Follows() bool { return b.dps != nil && b.manifests != nil }

// NameTaken reports each hub that already has a device of that name.
func (b *HubBackend) NameTaken(ctx context.Context, name string) ([]string, error) {
	var out []string
	var errs []error
	for _, h := range b.hub.Hubs() {
		_, err := b.hub.GetDevice(ctx, h, name)
		where, err := taken("iothub "+h, err)
		out, errs = append(out, where...), append(errs, err)
	}
	return out, errors.Join(errs...)
}

// Check proves the hub credentials work.
func (b *HubBackend) Check(ctx context.Context) ([]string, error) {
	return nil, check(ctx, b.hub)
}

// Follow takes one look at the gateway's DPS registration and applies the
// manifest once it is assigned.
func (b *HubBackend) Follow(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.FollowResult, error) {
	d := in.Device
	reg, err := b.dps.Registration(ctx, d.Name)
	switch {
	case errors.Is(err, gatehouse.ErrBackendNotFound):
		return &gatehouse.FollowResult{Waiting: "the gateway has not registered with DPS yet"}, nil
	case err != nil:
		return nil, err
	case reg.Status != "assigned":
		return &gatehouse.FollowResult{Waiting: "DPS registration is " + reg.Status + detail(reg.ErrorMessage)}, nil
	}
	hub := reg.AssignedHub
	res := &gatehouse.FollowResult{Events: []gatehouse.Event{{Kind: "assigned", Detail: hub}}}
	if !slices.Contains(b.hub.Hubs(), hub) {
		res.Stalled = fmt.Sprintf("DPS assigned the gateway to IoT Hub %s, for which gatehouse has no credentials; add its connection string to GATEHOUSE_IOTHUB_CONNECTION_STRINGS, restart, and retry", hub)
		return res, nil
	}
	deviceID := reg.DeviceID
	if deviceID == "" {
		deviceID = d.Name
	}
	content, err := b.manifests.Render(manifest.Data{Name: d.Name, RegistrationID: d.Name, Hub: hub, MAC: d.MAC, DeviceID: deviceID, Labels: d.Labels})
	if err != nil {
		res.Stalled = "cannot render the deployment manifest: " + err.Error()
		return res, nil
	}
	if err := b.hub.ApplyConfiguration(ctx, hub, deviceID, content); err != nil {
		return res, err
	}
	res.Done, res.Output = true, map[string]string{gatehouse.OutAssignedHub: hub, outHubDeviceID: deviceID}
	res.Events = append(res.Events, gatehouse.Event{Kind: "manifest_applied", Detail: hub})
	return res, nil
}

// outHubDeviceID is the gateway's device id in its hub.
const outHubDeviceID = "hub_device_id"

func detail(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// Decommission deletes the gateway's device identity in its hub. Without
// a recorded hub (the follow-up had not finished) it looks in every hub
// for a device of the gateway's name, which approval checked was free.
func (b *HubBackend) Decommission(ctx context.Context, in *gatehouse.StepInput, dryRun bool) ([]gatehouse.Removal, error) {
	hub, id := in.Recorded[gatehouse.OutAssignedHub], in.Recorded[outHubDeviceID]
	if hub != "" && id != "" {
		return b.remove(ctx, hub, id, dryRun)
	}
	if in.Device.Name == "" {
		return nil, nil
	}
	var out []gatehouse.Removal
	for _, h := range b.hub.Hubs() {
		_, err := b.hub.GetDevice(ctx, h, in.Device.Name)
		if errors.Is(err, gatehouse.ErrBackendNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r, err := b.remove(ctx, h, in.Device.Name, dryRun)
		if err != nil {
			return nil, err
		}
		out = append(out, r...)
	}
	return out, nil
}

func (b *HubBackend) remove(ctx context.Context, hub, id string, dryRun bool) ([]gatehouse.Removal, error) {
	return gatehouse.RemoveLooked(b.Name(), "device "+id+" in "+hub, gatehouse.RemovalRemoved, dryRun,
		func() error { _, err := b.hub.GetDevice(ctx, hub, id); return err },
		func() error { return b.hub.DeleteDevice(ctx, hub, id) })
}

var (
	_ gatehouse.FixedName = (*DPSBackend)(nil)
	_ gatehouse.FixedName = (*HubBackend)(nil)
)

// FixedNameReason implements gatehouse.FixedName: DPS has no way to change
// an enrollment's registration id.
func (b *DPSBackend) FixedNameReason() string {
	return "the gateway's DPS registration id is its name and cannot be changed; decommission the gateway and approve it again under the new name"
}

// FixedNameReason implements gatehouse.FixedName: an IoT Hub device id is
// fixed once the identity exists.
func (b *HubBackend) FixedNameReason() string {
	return "the gateway's IoT Hub device id is its name and cannot be changed; decommission the gateway and approve it again under the new name"
}
