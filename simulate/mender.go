package simulate

import (
	"crypto"
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

// DefaultMenderInventoryDelay is how long after deviceauth creates a device
// the simulated inventory starts to hold it, unless SetInventoryDelay or
// MenderServerOptions.InventoryDelay says otherwise. It is not zero on
// purpose: a real Mender fills its inventory asynchronously (workflows), and
// code that tags a device right after preauthorizing it must cope.
const DefaultMenderInventoryDelay = 100 * time.Millisecond

// menderDeviceTokenTTL is deviceauth's default JWT expiration (one week).
const menderDeviceTokenTTL = 7 * 24 * time.Hour

// Mender simulates Mender's device auth (management and device API) and
// inventory. It is safe for concurrent use. Its methods are the in-process
// API, subject to Faults; MenderServer serves the same state over HTTP.
type Mender struct {
	Faults

	mu             sync.Mutex
	now            func() time.Time
	inventoryDelay time.Duration
	maxDevices     int               // accepted-device limit; 0 means unlimited
	tokenKey       []byte            // signs device JWTs
	byIdentity     map[string]string // id_data_sha256 → device id
	byAuthSet      map[string]string // auth set id → device id
	devices        map[string]*menderDevice
	order          []string          // device ids in creation order, for stable listings
	tokens         map[string]string // device JWT id (= auth set id) → device id
	created        uint64            // devices created so far, for menderDevice.seq
	// byTag indexes inventory tags, name → value → device ids, so a tag
	// search costs what it finds and not the whole inventory.
	byTag map[string]map[string]map[string]struct{}
}

type menderDevice struct {
	id       string
	seq      uint64 // creation order
	idKey    string // id_data_sha256 of identity
	identity map[string]string
	status   string
	created  time.Time
	updated  time.Time
	checkIn  time.Time
	authSets []menderAuthSet
	inv      menderInvRecord
}

type menderAuthSet struct {
	id     string
	pubkey string
	status string
	ts     time.Time
}

// menderInvRecord is what inventory holds of a device. Inventory is a
// separate service fed by workflows: it holds nothing before at.
type menderInvRecord struct {
	at      time.Time
	tags    map[string]menderTag
	etag    string
	updated time.Time
}

type menderTag struct {
	value, description string
	ts                 time.Time
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

func menderFail(status int, format string, args ...any) error {
	return &menderError{status: status, msg: fmt.Sprintf(format, args...)}
}

func menderBadRequest(format string, args ...any) error {
	return menderFail(http.StatusBadRequest, format, args...)
}

func menderDeviceNotFound(id string) error {
	return &menderError{status: http.StatusNotFound, msg: fmt.Sprintf("device %q", id), err: gatehouse.ErrBackendNotFound}
}

// menderAuthSetNotFound is deviceauth's store.ErrAuthSetNotFound.
func menderAuthSetNotFound() error {
	return &menderError{status: http.StatusNotFound, msg: "authorization set not found", err: gatehouse.ErrBackendNotFound}
}

// NewMender returns an empty Mender whose inventory lags deviceauth by
// DefaultMenderInventoryDelay.
func NewMender() *Mender {
	key := make([]byte, 32)
	rand.Read(key)
	return &Mender{
		now:            time.Now,
		inventoryDelay: DefaultMenderInventoryDelay,
		tokenKey:       key,
		byIdentity:     make(map[string]string),
		byAuthSet:      make(map[string]string),
		devices:        make(map[string]*menderDevice),
		tokens:         make(map[string]string),
		byTag:          make(map[string]map[string]map[string]struct{}),
	}
}

// SetClock replaces the clock (time.Now) behind timestamps, JWT expiry and
// the inventory delay, so tests can move time instead of sleeping.
func (m *Mender) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// SetInventoryDelay sets how long after deviceauth creates a device
// (preauthorize or first auth request) inventory starts to hold it. It
// applies to devices created from now on; 0 or less means at once.
func (m *Mender) SetInventoryDelay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inventoryDelay = max(d, 0)
}

// IndexNow makes inventory hold every device deviceauth has, as if the
// workflows had all run.
func (m *Mender) IndexNow() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.devices {
		d.inv.at = time.Time{}
	}
}

// SetDeviceLimit caps the number of accepted devices, as a Mender plan
// does; 0 means no limit. Accepting past it is a 422.
func (m *Mender) SetDeviceLimit(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maxDevices = max(n, 0)
}

// canAccept is deviceauth's canAcceptDevice: one more accepted device must
// fit the limit. The caller holds m.mu.
func (m *Mender) canAccept() bool {
	if m.maxDevices == 0 {
		return true
	}
	accepted := 0
	for _, d := range m.devices {
		if d.status == gatehouse.MenderAccepted {
			accepted++
		}
	}
	return accepted+1 <= m.maxDevices
}

// addDevice stores a new device with no auth sets, scheduling its arrival
// in inventory. The caller holds m.mu.
func (m *Mender) addDevice(idKey string, identity map[string]string) *menderDevice {
	now := m.now().UTC()
	m.created++
	d := &menderDevice{
		id: newUUID(), seq: m.created, idKey: idKey, identity: maps.Clone(identity),
		status: gatehouse.MenderNoAuth, created: now, updated: now,
		inv: menderInvRecord{at: now.Add(m.inventoryDelay), tags: map[string]menderTag{}},
	}
	m.byIdentity[idKey] = d.id
	m.devices[d.id] = d
	m.order = append(m.order, d.id)
	return d
}

// addAuthSet gives d a new auth set. The caller holds m.mu.
func (m *Mender) addAuthSet(d *menderDevice, pub, status string) *menderAuthSet {
	d.authSets = append(d.authSets, menderAuthSet{id: newUUID(), pubkey: pub, status: status, ts: m.now().UTC()})
	m.byAuthSet[d.authSets[len(d.authSets)-1].id] = d.id
	return &d.authSets[len(d.authSets)-1]
}

// removeDevice forgets a device, its auth sets, tokens and inventory
// record. The caller holds m.mu.
func (m *Mender) removeDevice(d *menderDevice) {
	for _, s := range d.authSets {
		delete(m.byAuthSet, s.id)
	}
	m.deleteTokens(d.id)
	for name, t := range d.inv.tags {
		m.unindexTag(d.id, name, t.value)
	}
	delete(m.devices, d.id)
	delete(m.byIdentity, d.idKey)
	m.order = slices.DeleteFunc(m.order, func(id string) bool { return id == d.id })
}

// authSet finds an auth set by its id alone, as deviceauth's
// GetAuthSetById does. The caller holds m.mu.
func (m *Mender) authSet(id string) (*menderDevice, int) {
	d, ok := m.devices[m.byAuthSet[id]]
	if !ok {
		return nil, -1
	}
	return d, slices.IndexFunc(d.authSets, func(a menderAuthSet) bool { return a.id == id })
}

// authSetStatus returns an auth set's status by its id alone.
func (m *Mender) authSetStatus(id string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, i := m.authSet(id)
	if i < 0 {
		return "", false
	}
	return d.authSets[i].status, true
}

// keySet is the index of d's auth set holding pub, or -1.
func (d *menderDevice) keySet(pub string) int {
	return slices.IndexFunc(d.authSets, func(a menderAuthSet) bool { return a.pubkey == pub })
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

// Device returns a copy of one device as deviceauth knows it.
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

// Status returns a device's auth status, "" for an unknown device.
func (m *Mender) Status(deviceID string) string {
	d, _ := m.device(deviceID)
	return d.status
}

// Len returns the number of devices deviceauth holds.
func (m *Mender) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.devices)
}

func (d *menderDevice) clone() menderDevice {
	c := *d
	c.identity = maps.Clone(d.identity)
	c.authSets = slices.Clone(d.authSets)
	c.inv.tags = maps.Clone(d.inv.tags)
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
// so equal identities hash equally whatever their order. Preauthorize
// re-marshals identity_data (model_pre_auth_req.go getDbModel) and an auth
// request's id_data goes through utils.JsonSort (model/authreq.go Validate),
// which both come down to this.
func identityKey(identity map[string]string) (string, error) {
	b, err := json.Marshal(identity)
	if err != nil {
		return "", menderBadRequest("identity_data: %v", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// parsePublicKey accepts what deviceauth's utils.ParsePubKey and
// SerializePubKey accept, and returns the key and its re-serialized PEM,
// the form deviceauth stores and compares.
func parsePublicKey(s string) (crypto.PublicKey, string, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, "", menderBadRequest("cannot decode public key: want a PEM block of type PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", menderBadRequest("cannot decode public key: %v", err)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, "", menderBadRequest("unrecognized public key type %T", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", menderBadRequest("cannot serialize public key: %v", err)
	}
	return pub, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// normalizePublicKey is parsePublicKey for callers that need only the PEM.
func normalizePublicKey(s string) (string, error) {
	_, pub, err := parsePublicKey(s)
	return pub, err
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
