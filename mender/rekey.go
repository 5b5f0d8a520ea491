package mender

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/rest"
)

var _ gatehouse.Rekeyer = (*Backend)(nil)

// DeleteAuthSet removes one auth set (DELETE .../devices/{id}/auth/{aid},
// 204). deviceauth removes the whole device when the set is preauthorized
// (devauth.go DeleteAuthSet), and revokes the device's tokens when it was
// accepted. An unknown set is an error wrapping gatehouse.ErrBackendNotFound.
func (c *Client) DeleteAuthSet(ctx context.Context, deviceID, authSetID string) error {
	if deviceID == "" || authSetID == "" {
		return errors.New("mender: a device id and an auth set id are required")
	}
	_, err := c.do(ctx, rest.Request{
		Method: http.MethodDelete,
		Path:   devicePath(deviceID) + "/auth/" + url.PathEscape(authSetID),
		OK:     []int{http.StatusNoContent, http.StatusOK},
	})
	return notFound(err)
}

// Rekey moves the gateway's Mender device onto its new key: the new key
// becomes an auth set of the same device (accepted if the reflashed
// gateway's client has asked already, else preauthorized so its first
// request is accepted), and every other auth set is removed, so the old
// key gets no token again. The device keeps its id, inventory and name tag.
//
// Each call reads the device afresh and does only what is left, so a rerun
// after a lost answer meets its own work.
func (b *Backend) Rekey(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	id := in.Recorded[gatehouse.OutMenderDeviceID]
	if id == "" {
		return b.Provision(ctx, in) // never reached Mender: provision afresh
	}
	dev, err := b.api.GetDevice(ctx, id)
	if errors.Is(err, gatehouse.ErrBackendNotFound) {
		// Removed in Mender meanwhile, or by an earlier attempt below:
		// nothing to keep, so the new key gets a device of its own.
		return b.Provision(ctx, in)
	}
	if err != nil {
		return nil, err
	}
	if dev.Decommissioning {
		return nil, fmt.Errorf("mender: device %s is being decommissioned in Mender; retrying once Mender has removed it", id)
	}
	ours, others := splitAuthSets(dev.AuthSets, in.Key.PublicKey)
	if old := preauthorized(others); old != nil {
		return b.dropPreauthorized(ctx, in, id, old)
	}
	if err := b.trustNewKey(ctx, in, id, ours); err != nil {
		return nil, err
	}
	for _, s := range others {
		if err := b.api.DeleteAuthSet(ctx, id, s.ID); err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
			return nil, fmt.Errorf("mender: remove the replaced key's auth set %s of device %s: %w", s.ID, id, err)
		}
	}
	if err := b.tag(ctx, id, in.Device.Name); err != nil {
		return nil, err
	}
	return &gatehouse.StepResult{Output: map[string]string{gatehouse.OutMenderDeviceID: id}}, nil
}

// trustNewKey makes the new key's auth set one the gateway's client gets a
// token with. Accepting a pending set rejects the old accepted one, which
// is removed next.
func (b *Backend) trustNewKey(ctx context.Context, in *gatehouse.StepInput, id string, ours *gatehouse.MenderAuthSet) error {
	switch {
	case ours == nil:
		dev, err := b.api.Preauthorize(ctx, identityOf(in.Device), protocol.PublicKeyPEM(in.Key.PublicKey), true)
		if err != nil {
			return err
		}
		if dev.ID != id {
			return fmt.Errorf("mender: mac %s now belongs to device %s, not to the gateway's device %s; check Mender, then retry", in.Device.MAC, dev.ID, id)
		}
		return nil
	case ours.Status == gatehouse.MenderAccepted || ours.Status == gatehouse.MenderPreauthorized:
		return nil
	case ours.Status == gatehouse.MenderRejected:
		return fmt.Errorf("mender: the auth set with this gateway's new key was rejected in Mender (device %s); accept it there, then retry", id)
	}
	return b.api.SetAuthSetStatus(ctx, id, ours.ID, gatehouse.MenderAccepted)
}

// dropPreauthorized handles an old key that was preauthorized and never
// used: deviceauth can neither reject such a set nor remove it without
// removing the device, and two preauthorized sets break the device. The
// device has no history then (the gateway never authenticated), so it is
// removed and the new key provisioned afresh.
func (b *Backend) dropPreauthorized(ctx context.Context, in *gatehouse.StepInput, id string, old *gatehouse.MenderAuthSet) (*gatehouse.StepResult, error) {
	if err := b.api.DeleteAuthSet(ctx, id, old.ID); err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
		return nil, fmt.Errorf("mender: remove the replaced key's preauthorized auth set of device %s: %w", id, err)
	}
	return b.Provision(ctx, in)
}

func preauthorized(sets []gatehouse.MenderAuthSet) *gatehouse.MenderAuthSet {
	for i := range sets {
		if sets[i].Status == gatehouse.MenderPreauthorized {
			return &sets[i]
		}
	}
	return nil
}
