package mender

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// Backend provisions gateways into Mender. On a real gateway the Mender
// client asks first: at boot it sends an auth request with its key, so
// deviceauth usually already holds the device, pending, when the operator
// approves. The step therefore handles every state the device can be in,
// accepts only the auth set that holds the approved key, and tags the
// device with its name once inventory, which Mender fills in
// asynchronously, holds it.
type Backend struct {
	api gatehouse.Mender
	// TagTries and TagWait bound the read-back of the name tag within one
	// attempt: TagWait, doubling, between tries. Past them the step fails
	// with the reason and the job queue retries it later.
	TagTries int
	TagWait  time.Duration
}

var (
	_ gatehouse.Provisioner    = (*Backend)(nil)
	_ gatehouse.Decommissioner = (*Backend)(nil)
)

// NewBackend provisions into api, a *Client or a simulator.
func NewBackend(api gatehouse.Mender) *Backend {
	return &Backend{api: api, TagTries: 5, TagWait: 200 * time.Millisecond}
}

// Name implements gatehouse.Backend.
func (b *Backend) Name() string { return "mender" }

// Step implements gatehouse.Provisioner.
func (b *Backend) Step() gatehouse.StepName { return gatehouse.StepMender }

// NameTaken looks for the name among inventory's name tags, which is where
// Mender's own UI keeps a device's name. Mender does not enforce unique
// tags, so gatehouse does.
func (b *Backend) NameTaken(ctx context.Context, name string) ([]string, error) {
	ids, err := b.api.FindByTag(ctx, "name", name)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return []string{"mender"}, nil
}

// Check proves the URL and credentials work.
func (b *Backend) Check(ctx context.Context) ([]string, error) {
	if c, ok := b.api.(interface{ Check(context.Context) error }); ok {
		return nil, c.Check(ctx)
	}
	return nil, nil
}

// Provision authorizes the gateway's key for its identity, then sets the
// name tag and reads it back.
func (b *Backend) Provision(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	id, err := b.authorize(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := in.Record(ctx, map[string]string{gatehouse.OutMenderDeviceID: id}); err != nil {
		return nil, err
	}
	if err := b.tag(ctx, id, in.Device.Name); err != nil {
		return nil, err
	}
	return &gatehouse.StepResult{Output: map[string]string{gatehouse.OutMenderDeviceID: id}}, nil
}

func identityOf(d *gatehouse.Device) map[string]string { return map[string]string{"mac": d.MAC} }

// authorize preauthorizes a new identity, or settles the device deviceauth
// already holds for it, and returns the device id.
func (b *Backend) authorize(ctx context.Context, in *gatehouse.StepInput) (string, error) {
	pub := protocol.PublicKeyPEM(in.Key.PublicKey)
	dev, err := b.api.Preauthorize(ctx, identityOf(in.Device), pub, false)
	if err == nil {
		return dev.ID, nil // the client's first auth request will be accepted
	}
	if !errors.Is(err, gatehouse.ErrBackendExists) {
		return "", err
	}
	// The 409 never carries the auth sets: read them.
	if dev, err = b.api.GetDevice(ctx, dev.ID); err != nil {
		if errors.Is(err, gatehouse.ErrBackendNotFound) {
			return "", fmt.Errorf("mender: the device holding mac %s went away while gatehouse read it (a decommission in progress?); retrying", in.Device.MAC)
		}
		return "", err
	}
	return dev.ID, b.settle(ctx, in, dev, pub)
}

// settle brings an existing device to a state in which the gateway's
// Mender client gets its token, or says why gatehouse must not.
func (b *Backend) settle(ctx context.Context, in *gatehouse.StepInput, dev gatehouse.MenderDevice, pub string) error {
	mac := in.Device.MAC
	if dev.Decommissioning {
		return fmt.Errorf("mender: device %s with mac %s is being decommissioned in Mender; retrying once Mender has removed it", dev.ID, mac)
	}
	ours, others := splitAuthSets(dev.AuthSets, in.Key.PublicKey)
	switch {
	case ours == nil && len(others) == 0:
		// Known identity without a key (status noauth): force adds ours
		// as a preauthorized auth set.
		_, err := b.api.Preauthorize(ctx, identityOf(in.Device), pub, true)
		return err
	case ours == nil:
		return fmt.Errorf("mender: device %s already holds mac %s with another key (%s); it is another device or a reflashed one, so gatehouse will not accept it: decommission the device in Mender, or reject that key there, then retry",
			dev.ID, mac, others[0].Status)
	case ours.Status == gatehouse.MenderAccepted || ours.Status == gatehouse.MenderPreauthorized:
		return nil
	case ours.Status == gatehouse.MenderRejected:
		return fmt.Errorf("mender: the auth set with this gateway's key was rejected in Mender (device %s); accept it there, or decommission the device, then retry", dev.ID)
	case trusted(others):
		return fmt.Errorf("mender: device %s with mac %s already has another accepted key; accepting this gateway's key would reject it, so this is a reflash or a MAC clash: decommission the device in Mender first, then retry", dev.ID, mac)
	}
	// Pending with our key: the client asked first. Preauthorizing does not
	// accept a pending set; accepting it does.
	return b.api.SetAuthSetStatus(ctx, dev.ID, ours.ID, gatehouse.MenderAccepted)
}

// splitAuthSets finds the auth set holding spki, and the others.
func splitAuthSets(sets []gatehouse.MenderAuthSet, spki []byte) (ours *gatehouse.MenderAuthSet, others []gatehouse.MenderAuthSet) {
	for i, s := range sets {
		if sameKey(s.PublicKey, spki) {
			ours = &sets[i]
		} else {
			others = append(others, s)
		}
	}
	return ours, others
}

func trusted(sets []gatehouse.MenderAuthSet) bool {
	for _, s := range sets {
		if s.Status == gatehouse.MenderAccepted || s.Status == gatehouse.MenderPreauthorized {
			return true
		}
	}
	return false
}

// sameKey compares a PEM public key with a DER SubjectPublicKeyInfo after
// re-serializing it, since deviceauth stores keys re-serialized.
func sameKey(pemKey string, spki []byte) bool {
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		return false
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return false
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	return err == nil && bytes.Equal(der, spki)
}

// tag sets the name tag and reads it back: inventory answers a tag PATCH
// with 200 even for a device it does not hold yet, and keeps nothing.
func (b *Backend) tag(ctx context.Context, id, name string) error {
	wait := b.TagWait
	for try := 1; ; try++ {
		if err := b.api.SetTag(ctx, id, "name", name); err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
			return err
		}
		tags, err := b.api.Tags(ctx, id)
		switch {
		case err == nil && tags["name"] == name:
			return nil
		case err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound):
			return err
		case try >= b.TagTries:
			return fmt.Errorf("mender: inventory does not hold device %s with its name tag yet (Mender fills inventory in asynchronously); retrying", id)
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Decommission removes the device deviceauth holds for the gateway: the
// one the step recorded. A dry run looks it up, so the plan says whether
// it is still there.
func (b *Backend) Decommission(ctx context.Context, in *gatehouse.StepInput, dryRun bool) ([]gatehouse.Removal, error) {
	id := in.Recorded[gatehouse.OutMenderDeviceID]
	if id == "" {
		return nil, nil
	}
	look := func() error { _, err := b.api.GetDevice(ctx, id); return err }
	return gatehouse.RemoveLooked(b.Name(), "device "+id, gatehouse.RemovalRemoved, dryRun, look, func() error { return b.api.Decommission(ctx, id) })
}

var _ gatehouse.Renamer = (*Backend)(nil)

// Rename sets the device's name tag to the new name and reads it back. A
// gateway whose step has not reached Mender yet has nothing to rename: its
// step tags it with whatever name it has when it runs.
func (b *Backend) Rename(ctx context.Context, in *gatehouse.StepInput, newName string) error {
	id := in.Recorded[gatehouse.OutMenderDeviceID]
	ids, err := b.api.FindByTag(ctx, "name", newName)
	if err != nil {
		return err
	}
	for _, other := range ids {
		if other != id {
			// other is Mender's own device id, not a gatehouse one: say so,
			// or an operator looks for it in gatehouse's list in vain.
			return gatehouse.Errorf(gatehouse.ECONFLICT, "name %q is already taken in mender by another device (Mender device id %s, not a gatehouse id)", newName, other)
		}
	}
	if id == "" {
		return nil
	}
	return b.tag(ctx, id, newName)
}
