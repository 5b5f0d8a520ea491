package config

import (
	"fmt"
	"strconv"
	"strings"

	"gatehouse"
	"gatehouse/azure"
)

// Azure DPS and IoT Hub: settings and backends.

func (c *Config) loadDPS(e *Env) error {
	raw, err := e.Secret("GATEHOUSE_DPS_CONNECTION_STRING")
	if err != nil {
		return err
	}
	if raw == "" {
		return requireFor(e, "GATEHOUSE_DPS_CONNECTION_STRING", "GATEHOUSE_DPS_ID_SCOPE", "GATEHOUSE_DPS_ENDPOINT")
	}
	cs, err := azure.ParseConnectionString(raw)
	if err != nil {
		return fmt.Errorf("config: GATEHOUSE_DPS_CONNECTION_STRING: %w", err)
	}
	d := &azure.DPSConfig{ConnectionString: cs, IDScope: e.Get("GATEHOUSE_DPS_ID_SCOPE"), Endpoint: e.Get("GATEHOUSE_DPS_ENDPOINT")}
	if d.RateLimit, err = perMinute(e, "GATEHOUSE_DPS_RATE_LIMIT"); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("config: dps: %w", err)
	}
	c.DPS = d
	return nil
}

// loadHubs reads one connection string per IoT Hub, separated by newlines
// or spaces (connection strings contain neither).
func (c *Config) loadHubs(e *Env) error {
	raw, err := e.Secret("GATEHOUSE_IOTHUB_CONNECTION_STRINGS")
	if err != nil || raw == "" {
		return err
	}
	h := &azure.HubConfig{}
	for i, s := range strings.Fields(raw) {
		cs, err := azure.ParseConnectionString(s)
		if err != nil {
			return fmt.Errorf("config: GATEHOUSE_IOTHUB_CONNECTION_STRINGS entry %d: %w", i+1, err)
		}
		h.Hubs = append(h.Hubs, cs)
	}
	if h.Endpoints, err = endpoints(e.Get("GATEHOUSE_IOTHUB_ENDPOINTS")); err != nil {
		return err
	}
	if h.RateLimit, err = perMinute(e, "GATEHOUSE_IOTHUB_RATE_LIMIT"); err != nil {
		return err
	}
	if err := h.Validate(); err != nil {
		return fmt.Errorf("config: iothub: %w", err)
	}
	c.Hubs = h
	return nil
}

// perMinute reads an optional quota in calls a minute: the service's
// documented quota depends on its tier and units, which gatehouse cannot
// ask for, so the default is the smallest tier's and the operator raises it.
// Unset is 0, the client's default.
func perMinute(e *Env, key string) (int, error) {
	v := e.Get(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("config: %s must be a whole number of calls a minute above 0, not %q", key, v)
	}
	return n, nil
}

// endpoints reads "host=url" pairs that send a hub's calls elsewhere, e.g.
// through a proxy or to a simulator.
func endpoints(raw string) (map[string]string, error) {
	if raw == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Fields(raw) {
		host, url, ok := strings.Cut(pair, "=")
		if !ok || host == "" || url == "" {
			return nil, fmt.Errorf("config: GATEHOUSE_IOTHUB_ENDPOINTS: want host=url pairs, got %q", pair)
		}
		out[host] = url
	}
	return out, nil
}

func buildDPS(c *Config, apis *builtAPIs) (gatehouse.Backend, error) {
	if c.DPS == nil {
		return nil, nil
	}
	cfg := *c.DPS
	cfg.Logger = c.logger(cfg.Logger)
	d, err := azure.NewDPS(cfg)
	if err != nil {
		return nil, err
	}
	apis.dps = d
	apis.keep(d)
	return azure.NewDPSBackend(d), nil
}

func buildHub(c *Config, apis *builtAPIs) (gatehouse.Backend, error) {
	if c.Hubs == nil {
		return nil, nil
	}
	cfg := *c.Hubs
	cfg.Logger = c.logger(cfg.Logger)
	h, err := azure.NewIoTHub(cfg)
	if err != nil {
		return nil, err
	}
	apis.keep(h)
	var m azure.Manifests
	if c.Manifests != nil {
		m = c.Manifests
	}
	return azure.NewHubBackend(h, apis.dps, m), nil
}
