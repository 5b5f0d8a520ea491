package simulate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/azure"
)

var _ gatehouse.IoTHub = (*Hub)(nil)

// DefaultHubHost is the hub NewHub simulates when given none.
const DefaultHubHost = "sim-hub.azure-devices.net"

// Hub simulates the device registry and edge configuration of one or more
// IoT Hubs, addressed by host name. It is safe for concurrent use. Its
// methods are the in-process API, subject to Faults; HubServer serves the
// same state over IoT Hub's HTTP API.
type Hub struct {
	Faults

	hosts []string
	mu    sync.Mutex
	// devices maps lower-case host → device id → device. Its set of hosts
	// is fixed by NewHub, so only the inner maps need mu.
	devices map[string]map[string]*hubDevice
}

type hubDevice struct {
	d             gatehouse.HubDevice
	etag          string
	generationID  string
	primaryKey    string
	secondaryKey  string
	stateUpdated  time.Time
	config        json.RawMessage
	configApplied time.Time
}

// NewHub returns hubs with the given host names (DefaultHubHost if none),
// all empty.
func NewHub(hosts ...string) *Hub {
	if len(hosts) == 0 {
		hosts = []string{DefaultHubHost}
	}
	h := &Hub{hosts: slices.Clone(hosts), devices: map[string]map[string]*hubDevice{}}
	for _, host := range hosts {
		h.devices[strings.ToLower(host)] = map[string]*hubDevice{}
	}
	return h
}

// Hubs returns the hub host names.
func (h *Hub) Hubs() []string { return slices.Clone(h.hosts) }

func (h *Hub) has(host string) bool {
	_, ok := h.devices[strings.ToLower(host)]
	return ok
}

// GetDevice answers like GET /devices/{id}.
func (h *Hub) GetDevice(ctx context.Context, hub, deviceID string) (gatehouse.HubDevice, error) {
	if err := h.enter(ctx, "iothub"); err != nil {
		return gatehouse.HubDevice{}, err
	}
	dev, err := h.device(hub, deviceID)
	return dev.d, err
}

// device returns a copy of a device's record.
func (h *Hub) device(hub, deviceID string) (hubDevice, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, dev, err := h.lookup(hub, deviceID)
	if err != nil {
		return hubDevice{}, err
	}
	return *dev, nil
}

// lookup finds a device and the hub map holding it; h.mu must be held.
func (h *Hub) lookup(hub, deviceID string) (map[string]*hubDevice, *hubDevice, error) {
	devs, err := h.hub(hub)
	if err != nil {
		return nil, nil, err
	}
	dev, ok := devs[deviceID]
	if !ok {
		return nil, nil, deviceNotFound(hub, deviceID)
	}
	return devs, dev, nil
}

// hub returns one hub's devices; h.mu must be held.
func (h *Hub) hub(host string) (map[string]*hubDevice, error) {
	devs, ok := h.devices[strings.ToLower(host)]
	if !ok {
		return nil, fmt.Errorf("iothub: %w %s; configure its connection string", azure.ErrUnknownHub, host)
	}
	return devs, nil
}

func deviceNotFound(hub, deviceID string) error {
	return azErr("iothub", http.StatusNotFound, 404001, gatehouse.ErrBackendNotFound, "device %q in %s", deviceID, hub)
}

// DeleteDevice answers like DELETE /devices/{id} with If-Match: *.
func (h *Hub) DeleteDevice(ctx context.Context, hub, deviceID string) error {
	if err := h.enter(ctx, "iothub"); err != nil {
		return err
	}
	if err := h.remove(hub, deviceID, "*"); err != nil {
		return err
	}
	return h.lose("iothub")
}

func (h *Hub) remove(hub, deviceID, ifMatch string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	devs, dev, err := h.lookup(hub, deviceID)
	if err != nil {
		return err
	}
	if !etagMatches(ifMatch, dev.etag) {
		return azErr("iothub", http.StatusPreconditionFailed, 412002, nil, "device %q: etag does not match If-Match", deviceID)
	}
	delete(devs, deviceID)
	return nil
}

// ApplyConfiguration answers like POST /devices/{id}/applyConfigurationContent.
func (h *Hub) ApplyConfiguration(ctx context.Context, hub, deviceID string, content json.RawMessage) error {
	if err := h.enter(ctx, "iothub"); err != nil {
		return err
	}
	if err := h.apply(hub, deviceID, content); err != nil {
		return err
	}
	return h.lose("iothub")
}

func (h *Hub) apply(hub, deviceID string, content []byte) error {
	modules, err := validateConfiguration(content)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, dev, err := h.lookup(hub, deviceID)
	switch {
	case err != nil:
		return err
	case modules && !dev.d.IoTEdge:
		// The $edgeAgent/$edgeHub twins exist only on edge devices; refusing
		// here catches an enrollment created without capabilities.iotEdge.
		return azErr("iothub", http.StatusBadRequest, 400004, nil, "device %q is not an IoT Edge device", deviceID)
	}
	dev.config, dev.configApplied = bytes.Clone(content), time.Now().UTC()
	return nil
}

// validateConfiguration wants a ConfigurationContent object with at least
// one of its parts; it reports whether modulesContent is among them.
func validateConfiguration(content []byte) (modules bool, err error) {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(content, &c); err != nil || c == nil {
		return false, azErr("iothub", http.StatusBadRequest, 400004, nil, "configuration content is not a JSON object")
	}
	for _, part := range []string{"modulesContent", "moduleContent", "deviceContent"} {
		if raw, ok := c[part]; ok && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			return false, azErr("iothub", http.StatusBadRequest, 400004, nil, "configuration content: %s is not an object", part)
		}
	}
	_, modules = c["modulesContent"]
	if !modules && c["moduleContent"] == nil && c["deviceContent"] == nil {
		return false, azErr("iothub", http.StatusBadRequest, 400004, nil, "configuration content has no modulesContent")
	}
	return modules, nil
}

// AddDevice creates a device identity with new keys, as a registration or
// an operator would. An existing id is a 409.
func (h *Hub) AddDevice(hub string, dev gatehouse.HubDevice) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	devs, err := h.hub(hub)
	if err != nil {
		return err
	}
	if _, ok := devs[dev.DeviceID]; ok {
		return azErr("iothub", http.StatusConflict, 409001, gatehouse.ErrBackendExists, "device %q in %s", dev.DeviceID, hub)
	}
	devs[dev.DeviceID] = newHubDevice(dev, newDeviceKey(), newDeviceKey())
	return nil
}

// provision creates or updates the identity of a device DPS assigned here.
// A registered device connects at once, as IoT Edge does.
func (h *Hub) provision(hub, deviceID string, iotEdge bool, primary, secondary string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	devs, err := h.hub(hub)
	if err != nil {
		return err
	}
	dev := gatehouse.HubDevice{DeviceID: deviceID, Status: "enabled", ConnectionState: "Connected", IoTEdge: iotEdge}
	if cur, ok := devs[deviceID]; ok {
		cur.d, cur.primaryKey, cur.secondaryKey = dev, primary, secondary
		cur.etag, cur.stateUpdated = newETag(), time.Now().UTC()
		return nil
	}
	devs[deviceID] = newHubDevice(dev, primary, secondary)
	return nil
}

func newHubDevice(dev gatehouse.HubDevice, primary, secondary string) *hubDevice {
	if dev.Status == "" {
		dev.Status = "enabled"
	}
	if dev.ConnectionState == "" {
		dev.ConnectionState = "Disconnected"
	}
	return &hubDevice{d: dev, etag: newETag(), generationID: strings.Trim(newETag(), `"`),
		primaryKey: primary, secondaryKey: secondary, stateUpdated: time.Now().UTC()}
}

// newDeviceKey is a symmetric key as IoT Hub generates it: 32 random bytes.
func newDeviceKey() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// SetConnectionState sets a device's connectionState (Connected or
// Disconnected), as the device going on or off line would.
func (h *Hub) SetConnectionState(hub, deviceID, state string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, dev, err := h.lookup(hub, deviceID)
	if err != nil {
		return err
	}
	dev.d.ConnectionState, dev.stateUpdated = state, time.Now().UTC()
	return nil
}

// Configuration returns the content last applied to a device.
func (h *Hub) Configuration(hub, deviceID string) (json.RawMessage, bool) {
	dev, err := h.device(hub, deviceID)
	if err != nil || dev.config == nil {
		return nil, false
	}
	return bytes.Clone(dev.config), true
}

// Devices returns one hub's devices sorted by id.
func (h *Hub) Devices(hub string) []gatehouse.HubDevice {
	h.mu.Lock()
	defer h.mu.Unlock()
	devs, err := h.hub(hub)
	if err != nil {
		return nil
	}
	out := make([]gatehouse.HubDevice, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.d)
	}
	slices.SortFunc(out, func(a, b gatehouse.HubDevice) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	return out
}
