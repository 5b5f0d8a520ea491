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
	"strings"

	"gatehouse"
	"gatehouse/manifest"
	"gatehouse/rest"
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

// recSentKey prefixes what each attempt records, before its PUT, of the
// primary key it sends: a one-way digest (keyDigest), never the key. An
// enrollment holding one of these keys is this gateway's, made by an
// attempt whose answer was lost; one holding any other key is not, and is
// refused rather than adopted. Each attempt records under its own name, so
// two attempts running at once cannot overwrite each other's record.
const recSentKey = "dps_sent_key_sha256."

// recForeign records that the step met an enrollment of the gateway's name
// it did not make, so reruns look before they write.
const recForeign = "dps_foreign_enrollment"

// Provision creates the gateway's enrollment in one call when no earlier
// attempt may have made it: approval has just asked DPS whether the name is
// free, so the step does not ask again. An earlier attempt's record makes
// it look first, and a conflict makes it look after, adopting the
// enrollment only if it holds keys this gateway's attempts sent.
func (b *DPSBackend) Provision(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	name := in.Device.Name
	sent := sentKeys(in.Recorded)
	if len(sent) > 0 || in.Recorded[recForeign] != "" {
		e, err := b.api.GetEnrollment(ctx, name)
		switch {
		case err == nil:
			return b.adopt(e, name, sent)
		case !errors.Is(err, gatehouse.ErrBackendNotFound):
			return nil, err
		}
	}
	return b.create(ctx, in, sent)
}

// sentKeys are the digests of the keys earlier attempts sent.
func sentKeys(recorded map[string]string) map[string]bool {
	out := map[string]bool{}
	for k, v := range recorded {
		if strings.HasPrefix(k, recSentKey) && v != "" {
			out[v] = true
		}
	}
	return out
}

// create records the new key's digest, then sends the PUT without
// If-Match: DPS refuses it with 409 where the enrollment exists
// (reference/external-apis.md §2.3), and the conflict is resolved by
// reading what is there.
func (b *DPSBackend) create(ctx context.Context, in *gatehouse.StepInput, sent map[string]bool) (*gatehouse.StepResult, error) {
	name := in.Device.Name
	e := gatehouse.Enrollment{RegistrationID: name, DeviceID: name, IoTEdge: true,
		PrimaryKey: newSymmetricKey(), SecondaryKey: newSymmetricKey()}
	digest := keyDigest(e.PrimaryKey)
	if err := in.Record(ctx, map[string]string{recSentKey + digest: digest}); err != nil {
		return nil, err
	}
	sent[digest] = true
	stored, err := b.api.CreateEnrollment(ctx, e)
	switch {
	case errors.Is(err, gatehouse.ErrBackendExists):
		existing, err := b.api.GetEnrollment(ctx, name)
		if err != nil {
			return nil, err
		}
		return b.adopt(existing, name, sent)
	case mayHaveActed(err) && ctx.Err() == nil:
		// The answer may be lost after the PUT took effect: look now
		// rather than fail the step and look on the rerun.
		existing, gerr := b.api.GetEnrollment(ctx, name)
		if gerr != nil {
			return nil, err
		}
		return b.adopt(existing, name, sent)
	case errors.Is(err, ErrReplacedEnrollment):
		// A service that replaces instead of refusing, and an enrollment
		// made since approval checked the name: not this gateway's. Forget
		// the key, so a rerun refuses the enrollment too.
		return nil, errors.Join(fmt.Errorf("dps: %w; %s", err, foreignAdvice(name)),
			in.Record(ctx, map[string]string{recSentKey + digest: "", recForeign: "replaced"}))
	case err != nil:
		return nil, err
	}
	if stored.RegistrationID != name || stored.PrimaryKey != e.PrimaryKey {
		return nil, fmt.Errorf("dps: enrollment for %q came back as %q without the keys sent; retrying", name, stored.RegistrationID)
	}
	return b.keysResult(stored), nil
}

// mayHaveActed says whether a failed call may still have taken effect: no
// answer (a lost response, a timeout) or a server error, rather than a
// refusal.
func mayHaveActed(err error) bool {
	if err == nil || errors.Is(err, ErrReplacedEnrollment) {
		return false
	}
	status := rest.StatusOf(err)
	return status == 0 || status >= 500
}

// adopt takes an enrollment that already exists if an attempt for this
// gateway made it.
func (b *DPSBackend) adopt(e gatehouse.Enrollment, name string, sent map[string]bool) (*gatehouse.StepResult, error) {
	if e.RegistrationID != name || e.PrimaryKey == "" {
		return nil, fmt.Errorf("dps: enrollment for %q came back as %q without its keys; retrying", name, e.RegistrationID)
	}
	if !sent[keyDigest(e.PrimaryKey)] {
		return nil, gatehouse.Errorf(gatehouse.ECONFLICT, "dps: an enrollment named %q already exists and was not made for this gateway (it holds keys gatehouse never sent for it); %s",
			name, foreignAdvice(name))
	}
	return b.keysResult(e), nil
}

func foreignAdvice(name string) string {
	return fmt.Sprintf("gatehouse will not hand it to this gateway. If it is stale, delete enrollment %q in DPS and retry; otherwise decommission this gateway and approve it under another name", name)
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
	// The follow-up's reads yield DPS's quota to approvals: with many
	// gateways waiting they would otherwise take most of it.
	reg, err := b.dps.Registration(background(ctx), d.Name)
	switch {
	case errors.Is(err, ErrYielded):
		return &gatehouse.FollowResult{Waiting: "DPS's operations quota is taken by approvals; looking again later"}, nil
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
