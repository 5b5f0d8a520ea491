package simulate

import (
	"context"
	"net/http"

	"gatehouse"
)

// Inventory follows mender-server backend/services/inventory:
// api/http/api_inventory.go (GetDeviceHandler, UpdateDeviceTagsHandler,
// updateDeviceAttributes), inv/inventory.go (UpsertAttributesWithUpdated,
// ReplaceAttributes) and store/mongo (upsertAttributes,
// UpsertRemoveDeviceAttributes). Tag writes never upsert a device: for one
// inventory does not hold they match nothing, and the call still answers
// 200, or 412 if it carried an If-Match.

// inInventory reports whether inventory holds d yet. The caller holds m.mu.
func (m *Mender) inInventory(d *menderDevice) bool {
	return !m.now().Before(d.inv.at)
}

// inventoryDevice returns a snapshot of a device inventory holds.
func (m *Mender) inventoryDevice(id string) (menderDevice, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok || !m.inInventory(d) {
		return menderDevice{}, false
	}
	return d.clone(), true
}

// inventorySnapshot returns the devices inventory holds, in creation order.
func (m *Mender) inventorySnapshot() []menderDevice {
	return m.snapshot(m.inInventory)
}

func menderInventoryNotFound() error {
	return &menderError{status: http.StatusNotFound, msg: "Device not found", err: gatehouse.ErrBackendNotFound}
}

// Tags returns a device's inventory tags, like reading the tags scope of
// GET /api/management/v1/inventory/devices/{id}: a 404 wrapping
// gatehouse.ErrBackendNotFound until inventory holds the device.
func (m *Mender) Tags(ctx context.Context, deviceID string) (map[string]string, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return nil, err
	}
	d, ok := m.inventoryDevice(deviceID)
	if !ok {
		return nil, menderInventoryNotFound()
	}
	return d.tagValues(), nil
}

func (d menderDevice) tagValues() map[string]string {
	out := make(map[string]string, len(d.inv.tags))
	for k, t := range d.inv.tags {
		out[k] = t.value
	}
	return out
}

// SetTag upserts one inventory tag, like PATCH
// /api/management/v1/inventory/devices/{id}/tags. For a device inventory
// does not hold (yet) it succeeds and stores nothing, as Mender does.
func (m *Mender) SetTag(ctx context.Context, deviceID, name, value string) error {
	if err := m.enter(ctx, "mender"); err != nil {
		return err
	}
	if err := m.setTags(deviceID, []menderTagJSON{{Name: name, Value: value}}, false, ""); err != nil {
		return err
	}
	return m.lose("mender")
}

// setTags upserts tags, or replaces the whole set (PUT) when replace is
// set. A non-empty ifMatch must equal the device's tags ETag, else 412.
func (m *Mender) setTags(deviceID string, tags []menderTagJSON, replace bool, ifMatch string) error {
	for _, t := range tags {
		if t.Name == "" {
			return menderBadRequest("name: cannot be blank")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[deviceID]
	held := ok && m.inInventory(d)
	switch {
	case held && (ifMatch == "" || ifMatch == d.inv.etag):
	case ifMatch != "":
		return menderFail(http.StatusPreconditionFailed, "ETag does not match")
	default:
		return nil // matched nothing: Mender answers 200 all the same
	}
	if replace {
		clear(d.inv.tags)
	}
	now := m.now().UTC()
	for _, t := range tags {
		d.inv.tags[t.Name] = menderTag{value: t.Value, description: t.Description, ts: now}
	}
	d.inv.etag, d.inv.updated = newUUID(), now
	return nil
}

// FindByTag returns the ids of devices whose tag name equals value, in
// creation order, like an inventory search with a tags-scope $eq filter: a
// device inventory does not hold yet is not found.
func (m *Mender) FindByTag(ctx context.Context, name, value string) ([]string, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, menderBadRequest("tag name is required")
	}
	var ids []string
	for _, d := range m.inventorySnapshot() {
		if t, ok := d.inv.tags[name]; ok && t.value == value {
			ids = append(ids, d.id)
		}
	}
	return ids, nil
}

// TagsOf returns a copy of a device's inventory tags, nil while inventory
// does not hold the device.
func (m *Mender) TagsOf(deviceID string) map[string]string {
	if d, ok := m.inventoryDevice(deviceID); ok {
		return d.tagValues()
	}
	return nil
}

// InInventory reports whether inventory holds the device yet.
func (m *Mender) InInventory(deviceID string) bool {
	_, ok := m.inventoryDevice(deviceID)
	return ok
}
