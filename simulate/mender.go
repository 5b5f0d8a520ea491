package simulate

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"gatehouse"
)

var _ gatehouse.Mender = (*Mender)(nil)

// StatusPreauthorized is the Mender auth-set status of a preauthorized device.
const StatusPreauthorized = "preauthorized"

// Mender simulates Mender's device auth and inventory management APIs.
// It is safe for concurrent use. Its methods are the in-process API, subject
// to Faults; MenderServer serves the same state over Mender's HTTP API.
type Mender struct {
	Faults

	mu         sync.Mutex
	now        func() time.Time
	byIdentity map[string]string // id_data_sha256 → device id
	devices    map[string]*menderDevice
	order      []string // device ids in creation order, for stable listings
}

type menderDevice struct {
	id       string
	idKey    string // id_data_sha256 of identity
	identity map[string]string
	status   string
	created  time.Time
	updated  time.Time
	authSets []menderAuthSet
	tags     map[string]string
	tagsTS   time.Time // last tag change, Mender's per-tag timestamp simplified
}

type menderAuthSet struct {
	id     string
	pubkey string
	status string
	ts     time.Time
}

// menderError is a refusal as Mender would answer it over HTTP; the status
// lets MenderServer answer with the same code the in-process API reports.
type menderError struct {
	status int
	msg    string
	err    error // a gatehouse sentinel, if any
}

func (e *menderError) Error() string {
	s := fmt.Sprintf("mender: %d %s", e.status, e.msg)
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *menderError) Unwrap() error { return e.err }

func menderBadRequest(format string, args ...any) error {
	return &menderError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func menderDeviceNotFound(id string) error {
	return &menderError{status: http.StatusNotFound, msg: fmt.Sprintf("device %q", id), err: gatehouse.ErrBackendNotFound}
}

// NewMender returns an empty Mender.
func NewMender() *Mender {
	return &Mender{
		now:        time.Now,
		byIdentity: make(map[string]string),
		devices:    make(map[string]*menderDevice),
	}
}

// Preauthorize registers a device like POST /api/management/v2/devauth/devices:
// 400 for a bad key or identity, 409 with the existing device for a known
// identity.
func (m *Mender) Preauthorize(ctx context.Context, identity map[string]string, publicKeyPEM string, force bool) (gatehouse.MenderDevice, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return gatehouse.MenderDevice{}, err
	}
	d, err := m.preauthorize(identity, publicKeyPEM, force)
	if err != nil {
		// deviceauth's 409 body hides the auth sets.
		dev := d.public()
		dev.AuthSets = nil
		return dev, err
	}
	if err := m.lose("mender"); err != nil {
		return gatehouse.MenderDevice{}, err
	}
	return d.public(), nil
}

// preauthorize validates and stores a device, returning a snapshot of it.
// A known identity is a 409 with the existing device,
// unless force adds the key as a new preauthorized auth set, as Mender does.
func (m *Mender) preauthorize(identity map[string]string, publicKeyPEM string, force bool) (menderDevice, error) {
	key, err := identityKey(identity)
	if err != nil {
		return menderDevice{}, err
	}
	pub, err := normalizePublicKey(publicKeyPEM)
	if err != nil {
		return menderDevice{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byIdentity[key]; ok {
		d := m.devices[id]
		if !force {
			return d.clone(), &menderError{status: http.StatusConflict, msg: "conflict: device " + id, err: gatehouse.ErrBackendExists}
		}
		d.upsertAuthSet(pub, m.now())
		return d.clone(), nil
	}
	d := m.newDevice(key, identity, pub)
	m.byIdentity[key] = d.id
	m.devices[d.id] = d
	m.order = append(m.order, d.id)
	return d.clone(), nil
}

func (m *Mender) newDevice(key string, identity map[string]string, pub string) *menderDevice {
	now := m.now().UTC()
	return &menderDevice{
		id:       newUUID(),
		idKey:    key,
		identity: maps.Clone(identity),
		status:   StatusPreauthorized,
		created:  now,
		updated:  now,
		authSets: []menderAuthSet{{id: newUUID(), pubkey: pub, status: StatusPreauthorized, ts: now}},
		tags:     make(map[string]string),
	}
}

// upsertAuthSet makes pub a preauthorized auth set of d.
func (d *menderDevice) upsertAuthSet(pub string, now time.Time) {
	now = now.UTC()
	d.updated = now
	for i := range d.authSets {
		if d.authSets[i].pubkey == pub {
			d.authSets[i].status = StatusPreauthorized
			d.status = menderDeviceStatus(d.authSets)
			return
		}
	}
	d.authSets = append(d.authSets, menderAuthSet{id: newUUID(), pubkey: pub, status: StatusPreauthorized, ts: now})
	d.status = menderDeviceStatus(d.authSets)
}

// menderDeviceStatus derives a device's status from its auth sets the way
// deviceauth does: the most trusted status of any set wins.
func menderDeviceStatus(sets []menderAuthSet) string {
	for _, want := range []string{"accepted", StatusPreauthorized, "pending", "rejected"} {
		for _, s := range sets {
			if s.status == want {
				return want
			}
		}
	}
	return "noauth"
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
// /api/management/v2/devauth/devices/{id}/auth/{aid}/status.
func (m *Mender) SetAuthSetStatus(ctx context.Context, deviceID, authSetID, status string) error {
	if err := m.enter(ctx, "mender"); err != nil {
		return err
	}
	if err := m.setAuthSetStatus(deviceID, authSetID, status); err != nil {
		return err
	}
	return m.lose("mender")
}

// setAuthSetStatus follows deviceauth's setAuthSetStatus: accepting one set
// first rejects the device's other accepted or preauthorized sets.
func (m *Mender) setAuthSetStatus(deviceID, authSetID, status string) error {
	switch status {
	case gatehouse.MenderAccepted, gatehouse.MenderRejected, gatehouse.MenderPending, gatehouse.MenderPreauthorized:
	default:
		return menderBadRequest("status: must be one of accepted, rejected, pending, preauthorized")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[deviceID]
	if !ok {
		return menderDeviceNotFound(deviceID)
	}
	i := slices.IndexFunc(d.authSets, func(a menderAuthSet) bool { return a.id == authSetID })
	if i < 0 {
		return &menderError{status: http.StatusNotFound, msg: "authorization set not found", err: gatehouse.ErrBackendNotFound}
	}
	if status == gatehouse.MenderAccepted {
		for j := range d.authSets {
			if j != i && (d.authSets[j].status == gatehouse.MenderAccepted || d.authSets[j].status == StatusPreauthorized) {
				d.authSets[j].status = gatehouse.MenderRejected
			}
		}
	}
	d.authSets[i].status = status
	d.status = menderDeviceStatus(d.authSets)
	d.updated = m.now().UTC()
	return nil
}

// Tags returns a device's inventory tags, like reading the tags scope of
// GET /api/management/v1/inventory/devices/{id}.
func (m *Mender) Tags(ctx context.Context, deviceID string) (map[string]string, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return nil, err
	}
	d, ok := m.device(deviceID)
	if !ok {
		return nil, menderDeviceNotFound(deviceID)
	}
	return d.tags, nil
}

// SetTag upserts one inventory tag, like PATCH
// /api/management/v1/inventory/devices/{id}/tags.
func (m *Mender) SetTag(ctx context.Context, deviceID, name, value string) error {
	if err := m.enter(ctx, "mender"); err != nil {
		return err
	}
	if err := m.setTags(deviceID, map[string]string{name: value}, false); err != nil {
		return err
	}
	return m.lose("mender")
}

// setTags upserts tags, or replaces the whole set (PUT) when replace is set.
func (m *Mender) setTags(deviceID string, tags map[string]string, replace bool) error {
	for name := range tags {
		if name == "" {
			return menderBadRequest("tag name is required")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[deviceID]
	if !ok {
		return menderDeviceNotFound(deviceID)
	}
	if replace {
		clear(d.tags)
	}
	maps.Copy(d.tags, tags)
	d.tagsTS = m.now().UTC()
	return nil
}

// FindByTag returns the ids of devices whose tag name equals value, in
// creation order, like an inventory search with a tags-scope $eq filter.
func (m *Mender) FindByTag(ctx context.Context, name, value string) ([]string, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, menderBadRequest("tag name is required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, id := range m.order {
		if v, ok := m.devices[id].tags[name]; ok && v == value {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Decommission removes a device and its auth sets, like DELETE
// /api/management/v2/devauth/devices/{id}. Mender cleans up the inventory
// asynchronously; the simulator does it at once.
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
	delete(m.devices, deviceID)
	delete(m.byIdentity, d.idKey)
	m.order = slices.DeleteFunc(m.order, func(id string) bool { return id == deviceID })
	return nil
}

// device returns a snapshot of one device.
func (m *Mender) device(id string) (menderDevice, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return menderDevice{}, false
	}
	return d.clone(), true
}

// snapshot returns copies of the devices keep selects, in creation order.
func (m *Mender) snapshot(keep func(*menderDevice) bool) []menderDevice {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []menderDevice
	for _, id := range m.order {
		if d := m.devices[id]; keep == nil || keep(d) {
			out = append(out, d.clone())
		}
	}
	return out
}

// Device returns a copy of one device.
func (m *Mender) Device(id string) (gatehouse.MenderDevice, bool) {
	d, ok := m.device(id)
	return d.public(), ok
}

// Devices returns copies of all devices in creation order.
func (m *Mender) Devices() []gatehouse.MenderDevice {
	snap := m.snapshot(nil)
	out := make([]gatehouse.MenderDevice, 0, len(snap))
	for _, d := range snap {
		out = append(out, d.public())
	}
	return out
}

// TagsOf returns a copy of a device's inventory tags, nil for an unknown device.
func (m *Mender) TagsOf(deviceID string) map[string]string {
	if d, ok := m.device(deviceID); ok {
		return d.tags
	}
	return nil
}

// Status returns a device's auth status, "" for an unknown device.
func (m *Mender) Status(deviceID string) string {
	d, _ := m.device(deviceID)
	return d.status
}

// Len returns the number of devices.
func (m *Mender) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.devices)
}

func (d *menderDevice) clone() menderDevice {
	c := *d
	c.identity = maps.Clone(d.identity)
	c.authSets = slices.Clone(d.authSets)
	c.tags = maps.Clone(d.tags)
	return c
}

// public is the device as gatehouse sees it; the zero device for the zero
// snapshot.
func (d menderDevice) public() gatehouse.MenderDevice {
	if d.id == "" {
		return gatehouse.MenderDevice{}
	}
	dev := gatehouse.MenderDevice{ID: d.id, IdentityData: maps.Clone(d.identity), Status: d.status, AuthSets: []gatehouse.MenderAuthSet{}}
	for _, s := range d.authSets {
		dev.AuthSets = append(dev.AuthSets, gatehouse.MenderAuthSet{ID: s.id, PublicKey: s.pubkey, Status: s.status})
	}
	return dev
}

// identityKey mirrors Mender's id_data_sha256: json.Marshal sorts map keys,
// so equal identities hash equally whatever their order.
func identityKey(identity map[string]string) (string, error) {
	if len(identity) == 0 {
		return "", menderBadRequest("identity_data is required")
	}
	b, err := json.Marshal(identity)
	if err != nil {
		return "", menderBadRequest("identity_data: %v", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// normalizePublicKey accepts what Mender accepts and returns the key
// re-serialized, as Mender stores it.
func normalizePublicKey(s string) (string, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return "", menderBadRequest("pubkey: want a PEM block of type PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "", menderBadRequest("pubkey: %v", err)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return "", menderBadRequest("pubkey: unsupported key type %T", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", menderBadRequest("pubkey: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// newUUID returns a random (version 4) UUID, as Mender's uuid.New does.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
