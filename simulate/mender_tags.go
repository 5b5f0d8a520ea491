package simulate

import (
	"cmp"
	"context"
	"net/http"
	"slices"

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
		for name, t := range d.inv.tags {
			m.unindexTag(d.id, name, t.value)
		}
		clear(d.inv.tags)
	}
	now := m.now().UTC()
	for _, t := range tags {
		if old, ok := d.inv.tags[t.Name]; ok {
			m.unindexTag(d.id, t.Name, old.value)
		}
		d.inv.tags[t.Name] = menderTag{value: t.Value, description: t.Description, ts: now}
		m.indexTag(d.id, t.Name, t.Value)
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
	return m.tagged(name, value), nil
}

// tagged returns the ids of the devices inventory holds whose tag name
// equals value, in creation order, from the tag index.
func (m *Mender) tagged(name, value string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var hits []*menderDevice
	for id := range m.byTag[name][value] {
		if d := m.devices[id]; d != nil && m.inInventory(d) {
			hits = append(hits, d)
		}
	}
	slices.SortFunc(hits, func(a, b *menderDevice) int { return cmp.Compare(a.seq, b.seq) })
	var ids []string
	for _, d := range hits {
		ids = append(ids, d.id)
	}
	return ids
}

// indexTag records that device id has tag name = value. The caller holds m.mu.
func (m *Mender) indexTag(id, name, value string) {
	values := m.byTag[name]
	if values == nil {
		values = map[string]map[string]struct{}{}
		m.byTag[name] = values
	}
	ids := values[value]
	if ids == nil {
		ids = map[string]struct{}{}
		values[value] = ids
	}
	ids[id] = struct{}{}
}

// unindexTag forgets that device id has tag name = value. The caller holds m.mu.
func (m *Mender) unindexTag(id, name, value string) {
	values := m.byTag[name]
	delete(values[value], id)
	if len(values[value]) == 0 {
		delete(values, value)
	}
	if len(values) == 0 {
		delete(m.byTag, name)
	}
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
