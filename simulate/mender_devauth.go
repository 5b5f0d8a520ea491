package simulate

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"gatehouse"
)

// The rules here follow mender-server backend/services/deviceauth:
// devauth/devauth.go (PreauthorizeDevice, AcceptDeviceAuth,
// RejectDeviceAuth, ResetDeviceAuth, setAuthSetStatus, updateDeviceStatus,
// DeleteAuthSet) and store/mongo/datastore_mongo.go (UpsertAuthSetStatus,
// RejectAuthSetsForDevice, getDeviceStatus).

var (
	errNoAuthSets   = errors.New("no auth sets")
	errBrokenStatus = errors.New("device status is broken")
)

// menderPreauth is what a preauthorize did: the device, and whether it
// already existed (force added a key to it).
type menderPreauth struct {
	dev     menderDevice
	existed bool
}

// Preauthorize registers a device like POST /api/management/v2/devauth/devices:
// 400 for a bad key or identity, 409 with the existing device (without auth
// sets, as deviceauth's 409 body) for a known identity. With force, a known
// identity gets the key as a preauthorized auth set, and the device (with its
// auth sets) comes back without error.
func (m *Mender) Preauthorize(ctx context.Context, identity map[string]string, publicKeyPEM string, force bool) (gatehouse.MenderDevice, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return gatehouse.MenderDevice{}, err
	}
	res, err := m.preauthorize(identity, publicKeyPEM, force)
	if err != nil {
		dev := res.dev.public()
		dev.AuthSets = nil
		return dev, err
	}
	if err := m.lose("mender"); err != nil {
		return gatehouse.MenderDevice{}, err
	}
	return res.dev.public(), nil
}

// preauthorize is PreauthorizeDevice. A known identity is a 409, unless
// force upserts the key as a preauthorized auth set: an existing set with
// that key keeps its id and becomes preauthorized, otherwise a new set is
// added. Force does not touch the device's own status (PreauthorizeDevice
// never calls updateDeviceStatus on that path).
func (m *Mender) preauthorize(identity map[string]string, publicKeyPEM string, force bool) (menderPreauth, error) {
	if len(identity) == 0 { // preAuthReq.validate: identity_data is Required
		return menderPreauth{}, menderBadRequest("identity_data: cannot be blank")
	}
	key, err := identityKey(identity)
	if err != nil {
		return menderPreauth{}, err
	}
	pub, err := normalizePublicKey(publicKeyPEM)
	if err != nil {
		return menderPreauth{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byIdentity[key]; ok {
		d := m.devices[id]
		if !force {
			return menderPreauth{dev: d.clone()}, &menderError{status: http.StatusConflict, msg: "device already exists", err: gatehouse.ErrBackendExists}
		}
		if i := d.keySet(pub); i >= 0 {
			d.authSets[i].status = StatusPreauthorized
		} else {
			m.addAuthSet(d, pub, StatusPreauthorized)
		}
		return menderPreauth{dev: d.clone(), existed: true}, nil
	}
	d := m.addDevice(key, identity)
	d.status = StatusPreauthorized
	m.addAuthSet(d, pub, StatusPreauthorized)
	return menderPreauth{dev: d.clone()}, nil
}

// GetDevice returns a device with its auth sets, like GET
// /api/management/v2/devauth/devices/{id}.
func (m *Mender) GetDevice(ctx context.Context, deviceID string) (gatehouse.MenderDevice, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return gatehouse.MenderDevice{}, err
	}
	d, ok := m.device(deviceID)
	if !ok {
		return gatehouse.MenderDevice{}, menderDeviceNotFound(deviceID)
	}
	return d.public(), nil
}

// SetAuthSetStatus changes one auth set's status, like PUT
// /api/management/v2/devauth/devices/{id}/auth/{aid}/status. deviceauth's
// handler takes only accepted, rejected and pending (statusValidate), even
// though the spec's enum lists preauthorized too.
func (m *Mender) SetAuthSetStatus(ctx context.Context, deviceID, authSetID, status string) error {
	if err := m.enter(ctx, "mender"); err != nil {
		return err
	}
	if err := m.setAuthSetStatus(deviceID, authSetID, status); err != nil {
		return err
	}
	return m.lose("mender")
}

func (m *Mender) setAuthSetStatus(deviceID, authSetID, status string) error {
	if !slices.Contains([]string{gatehouse.MenderAccepted, gatehouse.MenderRejected, gatehouse.MenderPending}, status) {
		return menderBadRequest("incorrect device status")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, i := m.authSet(authSetID)
	if i < 0 {
		return menderAuthSetNotFound()
	}
	switch from := d.authSets[i].status; status {
	case gatehouse.MenderAccepted:
		return m.accept(deviceID, d, i)
	case gatehouse.MenderRejected:
		if from != gatehouse.MenderPending && from != gatehouse.MenderAccepted {
			return menderBadRequest("dev auth: bad request")
		}
	default: // pending
		if from == StatusPreauthorized {
			return menderBadRequest("dev auth: bad request")
		}
	}
	return m.changeAuthSet(deviceID, d, i, status)
}

// accept is AcceptDeviceAuth: an accepted set is done (without even a look
// at the device id), only a pending or rejected one may be accepted, the
// device must exist and fit the limit.
func (m *Mender) accept(deviceID string, d *menderDevice, i int) error {
	switch d.authSets[i].status {
	case gatehouse.MenderAccepted:
		return nil
	case gatehouse.MenderPending, gatehouse.MenderRejected:
	default:
		return menderBadRequest("dev auth: bad request")
	}
	if _, ok := m.devices[deviceID]; !ok {
		return menderDeviceNotFound(deviceID)
	}
	if !m.canAccept() {
		return menderFail(http.StatusUnprocessableEntity, "maximum number of accepted devices reached")
	}
	return m.changeAuthSet(deviceID, d, i, gatehouse.MenderAccepted)
}

// changeAuthSet is devauth's setAuthSetStatus. Accepting rejects the
// device's other accepted sets (RejectAuthSetsForDevice matches status
// accepted only: a preauthorized set stays preauthorized); leaving accepted
// revokes the device's tokens.
func (m *Mender) changeAuthSet(deviceID string, d *menderDevice, i int, status string) error {
	if d.id != deviceID {
		return menderBadRequest("dev auth: dev ID and auth ID mismatch")
	}
	from := d.authSets[i].status
	if from == status {
		return nil
	}
	if from == gatehouse.MenderAccepted {
		m.deleteTokens(d.id)
	}
	if status == gatehouse.MenderAccepted {
		d.rejectAccepted(d.authSets[i].id)
		d.authSets[i].status = status
		return m.updateDeviceStatus(d, status, from)
	}
	d.authSets[i].status = status
	return m.updateDeviceStatus(d, "", from)
}

// rejectAccepted is RejectAuthSetsForDevice: every accepted set but keep
// becomes rejected.
func (d *menderDevice) rejectAccepted(keep string) {
	for j := range d.authSets {
		if d.authSets[j].id != keep && d.authSets[j].status == gatehouse.MenderAccepted {
			d.authSets[j].status = gatehouse.MenderRejected
		}
	}
}

// updateDeviceStatus is deviceauth's: nothing happens when the derived
// status equals current (which callers pass as the changed auth set's old
// status, not the device's); otherwise the device takes status, or the
// derived one when status is "".
func (m *Mender) updateDeviceStatus(d *menderDevice, status, current string) error {
	derived, err := deriveDeviceStatus(d.authSets)
	if derived == current {
		return nil
	}
	if status == "" {
		switch {
		case err == nil:
			status = derived
		case errors.Is(err, errNoAuthSets):
			status = gatehouse.MenderNoAuth
		default:
			return menderFail(http.StatusInternalServerError, "Cannot determine device status")
		}
	}
	d.status = status
	d.updated = m.now().UTC()
	return nil
}

// deriveDeviceStatus is the store's getDeviceStatus: one accepted set makes
// the device accepted, else one preauthorized set preauthorized, else any
// pending set pending, else rejected. Two accepted or two preauthorized
// sets are a broken device, which deviceauth answers with a 500.
func deriveDeviceStatus(sets []menderAuthSet) (string, error) {
	n := map[string]int{}
	for _, s := range sets {
		n[s.status]++
	}
	switch {
	case len(sets) == 0:
		return "", errNoAuthSets
	case n[gatehouse.MenderAccepted] > 1 || n[StatusPreauthorized] > 1:
		return "", errBrokenStatus
	case n[gatehouse.MenderAccepted] == 1:
		return gatehouse.MenderAccepted, nil
	case n[StatusPreauthorized] == 1:
		return StatusPreauthorized, nil
	case n[gatehouse.MenderPending] > 0:
		return gatehouse.MenderPending, nil
	case n[gatehouse.MenderRejected] > 0:
		return gatehouse.MenderRejected, nil
	}
	return "", errBrokenStatus
}

// DeleteAuthSet removes one auth set, like DELETE
// /api/management/v2/devauth/devices/{id}/auth/{aid}.
func (m *Mender) DeleteAuthSet(ctx context.Context, deviceID, authSetID string) error {
	if err := m.enter(ctx, "mender"); err != nil {
		return err
	}
	if err := m.deleteAuthSet(deviceID, authSetID); err != nil {
		return err
	}
	return m.lose("mender")
}

// deleteAuthSet is DeleteAuthSet. Removing a preauthorized set deletes the
// whole device, whatever other sets it has: the code checks only the
// removed set's status, while the spec speaks of a device whose only set it
// is. (deviceauth leaves the other sets behind in its collection; the
// simulator drops them with the device.) Removing an accepted set revokes
// the device's tokens; the device status is then derived again.
func (m *Mender) deleteAuthSet(deviceID, authSetID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, i := m.authSet(authSetID)
	if i < 0 || d.id != deviceID {
		return menderAuthSetNotFound()
	}
	removed := d.authSets[i]
	d.authSets = slices.Delete(d.authSets, i, i+1)
	delete(m.byAuthSet, removed.id)
	switch removed.status {
	case StatusPreauthorized:
		m.removeDevice(d)
		return nil
	case gatehouse.MenderAccepted:
		m.deleteTokens(d.id)
	}
	return m.updateDeviceStatus(d, "", removed.status)
}

// Decommission removes a device and its auth sets, like DELETE
// /api/management/v2/devauth/devices/{id}. Mender flags the device
// decommissioning and cleans up asynchronously; the simulator removes it
// (and its inventory record) at once.
func (m *Mender) Decommission(ctx context.Context, deviceID string) error {
	if err := m.enter(ctx, "mender"); err != nil {
		return err
	}
	if err := m.decommission(deviceID); err != nil {
		return err
	}
	return m.lose("mender")
}

func (m *Mender) decommission(deviceID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[deviceID]
	if !ok {
		return menderDeviceNotFound(deviceID)
	}
	m.removeDevice(d)
	return nil
}
