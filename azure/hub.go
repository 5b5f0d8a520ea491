package azure

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/rest"
)

var _ gatehouse.IoTHub = (*IoTHub)(nil)

// Defaults for HubConfig.
const (
	DefaultHubAPIVersion = "2021-04-12"
	// DefaultHubRateLimit is the S1 tier's identity registry quota,
	// 100/min/unit; raise it for more units or S3.
	DefaultHubRateLimit = 100
)

// ErrUnknownHub means DPS assigned a device to a hub gatehouse holds no
// credentials for. Retrying does not help; configuration does.
var ErrUnknownHub = errors.New("no credentials for hub")

// HubConfig configures a client of the IoT Hubs DPS may assign devices to.
type HubConfig struct {
	// Hubs holds one service connection string per hub, whose HostName is
	// the hub's host (myhub.azure-devices.net). The policy needs registry
	// read/write and service connect (e.g. iothubowner).
	Hubs []ConnectionString
	// Endpoints optionally maps a hub host to another base URL (a simulator).
	Endpoints map[string]string
	// APIVersion defaults to DefaultHubAPIVersion.
	APIVersion string
	// RateLimit is calls per minute per hub; default DefaultHubRateLimit.
	RateLimit int
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
	// Retries of a throttled or failed call; default 4, negative for none.
	Retries int
	// HTTP sends requests; default rest.Transport.
	HTTP *http.Client
	// UserAgent names gatehouse to the service.
	UserAgent string
	// Logger receives a debug line per HTTP attempt (method, path, status);
	// nil logs nothing.
	Logger *slog.Logger
}

// Validate reports a missing, duplicate or malformed setting.
func (c HubConfig) Validate() error {
	if len(c.Hubs) == 0 {
		return errors.New("iothub: no hubs configured")
	}
	seen := map[string]bool{}
	for i, cs := range c.Hubs {
		if err := cs.Validate(); err != nil {
			return fmt.Errorf("iothub: hub %d: %w", i+1, err)
		}
		host := hubKey(cs.HostName)
		if seen[host] {
			return fmt.Errorf("iothub: hub %s is configured twice", cs.HostName)
		}
		seen[host] = true
	}
	for host, endpoint := range c.Endpoints {
		if !seen[hubKey(host)] {
			return fmt.Errorf("iothub: endpoint given for %s, which has no connection string", host)
		}
		if err := checkEndpoint(endpoint); err != nil {
			return fmt.Errorf("iothub: %s: %w", host, err)
		}
	}
	if c.RateLimit < 0 || c.Timeout < 0 {
		return errors.New("iothub: RateLimit and Timeout must not be negative")
	}
	return nil
}

// IoTHub is a client of several IoT Hubs' service APIs, each with its own
// credentials and rate limiter. It is safe for concurrent use.
type IoTHub struct {
	hosts []string
	hubs  map[string]*caller // by lower-case host
}

// NewIoTHub returns a client for cfg.
// Quotas are the hubs' call budgets, one per hub, for sharing among
// replicas.
func (h *IoTHub) Quotas() []*rest.Quota {
	var out []*rest.Quota
	for _, c := range h.hubs {
		out = append(out, c.quota)
	}
	return out
}

func NewIoTHub(cfg HubConfig) (*IoTHub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	endpoints := map[string]string{}
	for host, u := range cfg.Endpoints {
		endpoints[hubKey(host)] = u
	}
	h := &IoTHub{hubs: map[string]*caller{}}
	for _, cs := range cfg.Hubs {
		key := hubKey(cs.HostName)
		h.hosts = append(h.hosts, cs.HostName)
		h.hubs[key] = newCaller(cs, options{
			service:    "iothub",
			baseURL:    cmp.Or(endpoints[key], "https://"+cs.HostName),
			apiVersion: cmp.Or(cfg.APIVersion, DefaultHubAPIVersion),
			rateLimit:  cmp.Or(cfg.RateLimit, DefaultHubRateLimit),
			timeout:    cfg.Timeout,
			retries:    cfg.Retries,
			http:       cfg.HTTP,
			userAgent:  cfg.UserAgent,
			logger:     cfg.Logger,
		})
	}
	return h, nil
}

// Host names compare case-insensitively, and DPS may report them in any case.
func hubKey(host string) string { return strings.ToLower(strings.TrimSuffix(host, ".")) }

// Hubs lists the configured hub host names in configuration order.
func (h *IoTHub) Hubs() []string { return append([]string(nil), h.hosts...) }

func (h *IoTHub) hub(host string) (*caller, error) {
	c, ok := h.hubs[hubKey(host)]
	if !ok {
		return nil, fmt.Errorf("iothub: %w %s; configure its connection string", ErrUnknownHub, host)
	}
	return c, nil
}

// GetDevice reads a device identity. A missing device is an error wrapping
// gatehouse.ErrBackendNotFound.
func (h *IoTHub) GetDevice(ctx context.Context, hub, deviceID string) (gatehouse.HubDevice, error) {
	c, err := h.target(hub, deviceID)
	if err != nil {
		return gatehouse.HubDevice{}, err
	}
	resp, err := c.do(ctx, rest.Request{Method: http.MethodGet, Path: c.path("/devices/%s", deviceID)})
	if err != nil {
		return gatehouse.HubDevice{}, err
	}
	var d deviceJSON
	if err := resp.JSON(&d); err != nil {
		return gatehouse.HubDevice{}, fmt.Errorf("iothub: device %q in %s: %w", deviceID, hub, err)
	}
	return d.domain(), nil
}

// DeleteDevice deletes a device identity whatever its etag. A missing
// device is an error wrapping gatehouse.ErrBackendNotFound.
func (h *IoTHub) DeleteDevice(ctx context.Context, hub, deviceID string) error {
	c, err := h.target(hub, deviceID)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, rest.Request{Method: http.MethodDelete, Path: c.path("/devices/%s", deviceID),
		Header: map[string]string{"If-Match": "*"}})
	return err
}

// ApplyConfiguration sets an edge device's modules from a deployment
// manifest ({"modulesContent": {...}}), sent as given.
func (h *IoTHub) ApplyConfiguration(ctx context.Context, hub, deviceID string, content json.RawMessage) error {
	c, err := h.target(hub, deviceID)
	if err != nil {
		return err
	}
	if !json.Valid(content) {
		return fmt.Errorf("iothub: configuration for %q is not valid JSON", deviceID)
	}
	_, err = c.do(ctx, rest.Request{Method: http.MethodPost,
		Path: c.path("/devices/%s/applyConfigurationContent", deviceID), Body: []byte(content)})
	return err
}

// Check makes one cheap authenticated call per hub (reading a device that
// surely does not exist), so bad credentials show at startup.
func (h *IoTHub) Check(ctx context.Context) error {
	var errs []error
	for _, host := range h.hosts {
		_, err := h.GetDevice(ctx, host, "gatehouse-credentials-check")
		if err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
			errs = append(errs, fmt.Errorf("iothub: check credentials for %s: %w", host, err))
		}
	}
	return errors.Join(errs...)
}

func (h *IoTHub) target(hub, deviceID string) (*caller, error) {
	c, err := h.hub(hub)
	if err != nil {
		return nil, err
	}
	return c, checkID("iothub", "device id", deviceID)
}

// deviceJSON is the part of IoT Hub's Device the client reads.
type deviceJSON struct {
	DeviceID        string           `json:"deviceId"`
	Status          string           `json:"status"`
	ConnectionState string           `json:"connectionState"`
	Capabilities    capabilitiesJSON `json:"capabilities"`
}

func (d deviceJSON) domain() gatehouse.HubDevice {
	return gatehouse.HubDevice{
		DeviceID:        d.DeviceID,
		Status:          d.Status,
		ConnectionState: d.ConnectionState,
		IoTEdge:         d.Capabilities.IoTEdge,
	}
}
