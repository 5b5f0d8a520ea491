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
	"sync"

	"gatehouse"
)

var _ gatehouse.Mender = (*Mender)(nil)

// StatusPreauthorized is the Mender auth-set status of a preauthorized device.
const StatusPreauthorized = "preauthorized"

// Mender simulates Mender's device auth and inventory management APIs.
// It is safe for concurrent use.
type Mender struct {
	Faults

	mu         sync.Mutex
	byIdentity map[string]string // id_data_sha256 → device id
	devices    map[string]*menderDevice
	order      []string // device ids in creation order, for stable listings
}

type menderDevice struct {
	dev    gatehouse.MenderDevice
	status string
	tags   map[string]string
}

// NewMender returns an empty Mender.
func NewMender() *Mender {
	return &Mender{
		byIdentity: make(map[string]string),
		devices:    make(map[string]*menderDevice),
	}
}

// Preauthorize registers a device like POST /api/management/v2/devauth/devices:
// 400 for a bad key or identity, 409 with the existing device for a known
// identity.
func (m *Mender) Preauthorize(ctx context.Context, identity map[string]string, publicKeyPEM string) (gatehouse.MenderDevice, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return gatehouse.MenderDevice{}, err
	}
	key, err := identityKey(identity)
	if err != nil {
		return gatehouse.MenderDevice{}, err
	}
	pub, err := normalizePublicKey(publicKeyPEM)
	if err != nil {
		return gatehouse.MenderDevice{}, err
	}
	dev, err := m.preauthorize(key, identity, pub)
	if err != nil {
		return dev, err
	}
	if err := m.lose("mender"); err != nil {
		return gatehouse.MenderDevice{}, err
	}
	return dev, nil
}

func (m *Mender) preauthorize(key string, identity map[string]string, pub string) (gatehouse.MenderDevice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byIdentity[key]; ok {
		return copyDevice(m.devices[id].dev), fmt.Errorf("mender: 409 conflict: device %s: %w", id, gatehouse.ErrBackendExists)
	}
	d := &menderDevice{
		dev: gatehouse.MenderDevice{
			ID:           newUUID(),
			IdentityData: maps.Clone(identity),
			PublicKeys:   []string{pub},
		},
		status: StatusPreauthorized,
		tags:   make(map[string]string),
	}
	m.byIdentity[key] = d.dev.ID
	m.devices[d.dev.ID] = d
	m.order = append(m.order, d.dev.ID)
	return copyDevice(d.dev), nil
}

// SetTag upserts one inventory tag, like PATCH
// /api/management/v1/inventory/devices/{id}/tags.
func (m *Mender) SetTag(ctx context.Context, deviceID, name, value string) error {
	if err := m.enter(ctx, "mender"); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("mender: 400 tag name is required")
	}
	if err := m.setTag(deviceID, name, value); err != nil {
		return err
	}
	return m.lose("mender")
}

func (m *Mender) setTag(deviceID, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[deviceID]
	if !ok {
		return fmt.Errorf("mender: 404 device %q: %w", deviceID, gatehouse.ErrBackendNotFound)
	}
	d.tags[name] = value
	return nil
}

// Devices returns copies of all devices in creation order.
func (m *Mender) Devices() []gatehouse.MenderDevice {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]gatehouse.MenderDevice, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, copyDevice(m.devices[id].dev))
	}
	return out
}

// Tags returns a copy of a device's inventory tags, nil for an unknown device.
func (m *Mender) Tags(deviceID string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.devices[deviceID]; ok {
		return maps.Clone(d.tags)
	}
	return nil
}

// Status returns a device's auth status, "" for an unknown device.
func (m *Mender) Status(deviceID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.devices[deviceID]; ok {
		return d.status
	}
	return ""
}

// Len returns the number of devices.
func (m *Mender) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.devices)
}

// identityKey mirrors Mender's id_data_sha256: json.Marshal sorts map keys,
// so equal identities hash equally whatever their order.
func identityKey(identity map[string]string) (string, error) {
	if len(identity) == 0 {
		return "", fmt.Errorf("mender: 400 identity_data is required")
	}
	b, err := json.Marshal(identity)
	if err != nil {
		return "", fmt.Errorf("mender: 400 identity_data: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// normalizePublicKey accepts what Mender accepts and returns the key
// re-serialized, as Mender stores it.
func normalizePublicKey(s string) (string, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return "", fmt.Errorf("mender: 400 pubkey: want a PEM block of type PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("mender: 400 pubkey: %w", err)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return "", fmt.Errorf("mender: 400 pubkey: unsupported key type %T", pub)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("mender: 400 pubkey: %w", err)
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

func copyDevice(d gatehouse.MenderDevice) gatehouse.MenderDevice {
	d.IdentityData = maps.Clone(d.IdentityData)
	d.PublicKeys = append([]string(nil), d.PublicKeys...)
	return d
}
