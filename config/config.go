// Package config reads gatehouse's backend settings from the environment or
// a KEY=VALUE file, secrets also from *_FILE paths, and builds the backend
// clients. Each backend is optional: it is on when its address is set.
package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/manifest"
	"gatehouse/mender"
	"gatehouse/vault"
	"gatehouse/webhook"
)

// Config is the backends gatehouse provisions into; nil means off.
type Config struct {
	Mender *mender.Config
	DPS    *azure.DPSConfig
	Hubs   *azure.HubConfig
	Vault  *vault.Config // its Sign makes the PKI sign the agent's CSR

	// Manifests are the deployment manifest templates, validated at load.
	Manifests *manifest.Set
	// FollowDeadline bounds the wait for an IoT Hub assignment; 0 = default.
	FollowDeadline time.Duration
	// Webhook receives every state change, signed; nil means none.
	Webhook *webhook.Sender
}

// Load reads every backend's settings and validates those that are on,
// reporting every problem at once.
func Load(e *Env) (*Config, error) {
	c := &Config{}
	var errs []error
	for _, r := range registry {
		errs = append(errs, r.load(c, e))
	}
	errs = append(errs, c.loadManifests(e), c.loadWebhook(e), c.loadFollow(e))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// requireFor reports settings of a backend that were given without the one
// that turns it on, which would otherwise be silently ignored.
func requireFor(e *Env, on string, keys ...string) error {
	for _, k := range keys {
		if e.Get(k) != "" || e.Get(k+"_FILE") != "" {
			return fmt.Errorf("config: %s is set but %s is not", k, on)
		}
	}
	return nil
}

func (c *Config) loadMender(e *Env) error {
	url := e.Get("GATEHOUSE_MENDER_URL")
	if url == "" {
		return requireFor(e, "GATEHOUSE_MENDER_URL", "GATEHOUSE_MENDER_TOKEN", "GATEHOUSE_MENDER_USER", "GATEHOUSE_MENDER_PASSWORD")
	}
	token, err1 := e.Secret("GATEHOUSE_MENDER_TOKEN")
	password, err2 := e.Secret("GATEHOUSE_MENDER_PASSWORD")
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	m := &mender.Config{URL: url, Token: token, User: e.Get("GATEHOUSE_MENDER_USER"), Password: password}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("config: mender: %w", err)
	}
	c.Mender = m
	return nil
}

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
	if err := h.Validate(); err != nil {
		return fmt.Errorf("config: iothub: %w", err)
	}
	c.Hubs = h
	return nil
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

func (c *Config) loadVault(e *Env) error {
	addr := e.Get("GATEHOUSE_VAULT_ADDR")
	if addr == "" {
		return requireFor(e, "GATEHOUSE_VAULT_ADDR", "GATEHOUSE_VAULT_ROLE", "GATEHOUSE_VAULT_TOKEN",
			"GATEHOUSE_VAULT_APPROLE_ROLE_ID", "GATEHOUSE_VAULT_KUBERNETES_ROLE")
	}
	token, err1 := e.Secret("GATEHOUSE_VAULT_TOKEN")
	secretID, err2 := e.Secret("GATEHOUSE_VAULT_APPROLE_SECRET_ID")
	mode, err3 := vaultMode(e.Get("GATEHOUSE_VAULT_MODE"))
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	v := &vault.Config{
		Addr: addr, Mount: e.Get("GATEHOUSE_VAULT_MOUNT"), Role: e.Get("GATEHOUSE_VAULT_ROLE"),
		Namespace: e.Get("GATEHOUSE_VAULT_NAMESPACE"), TTL: e.Get("GATEHOUSE_VAULT_TTL"), Token: token,
		AppRoleID: e.Get("GATEHOUSE_VAULT_APPROLE_ROLE_ID"), AppRoleSecretID: secretID,
		KubernetesRole: e.Get("GATEHOUSE_VAULT_KUBERNETES_ROLE"), KubernetesJWTPath: e.Get("GATEHOUSE_VAULT_KUBERNETES_JWT_PATH"),
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("config: vault: %w", err)
	}
	v.Sign = mode == "sign"
	c.Vault = v
	return nil
}

func vaultMode(m string) (string, error) {
	switch m {
	case "", "issue":
		return "issue", nil
	case "sign":
		return "sign", nil
	}
	return "", fmt.Errorf("config: GATEHOUSE_VAULT_MODE must be issue or sign, not %q", m)
}

func (c *Config) loadManifests(e *Env) error {
	def, groups := e.Get("GATEHOUSE_MANIFEST"), e.Get("GATEHOUSE_MANIFEST_GROUPS")
	if def == "" && groups == "" {
		return nil
	}
	m, err := manifest.Load(def, groups)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	c.Manifests = m
	return nil
}

func (c *Config) loadWebhook(e *Env) error {
	url := e.Get("GATEHOUSE_WEBHOOK_URL")
	secret, err := e.Secret("GATEHOUSE_WEBHOOK_SECRET")
	if err != nil || url == "" {
		if err == nil && secret != "" {
			err = errors.New("config: GATEHOUSE_WEBHOOK_SECRET is set but GATEHOUSE_WEBHOOK_URL is not")
		}
		return err
	}
	if err := webhook.ValidateURL(url); err != nil {
		return fmt.Errorf("config: GATEHOUSE_WEBHOOK_URL: %w", err)
	}
	if len(secret) < 16 {
		return errors.New("config: GATEHOUSE_WEBHOOK_SECRET must be set, at least 16 characters, when GATEHOUSE_WEBHOOK_URL is")
	}
	c.Webhook = &webhook.Sender{URL: url, Secret: []byte(secret)}
	return nil
}

func (c *Config) loadFollow(e *Env) error {
	v := e.Get("GATEHOUSE_FOLLOW_DEADLINE")
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("config: GATEHOUSE_FOLLOW_DEADLINE must be a positive duration such as 24h, not %q", v)
	}
	c.FollowDeadline = d
	return nil
}

// Clients are the built backends, in registration order.
type Clients struct {
	Backends []gatehouse.Backend
}

// Build makes the backend of every configured service.
func (c *Config) Build() (*Clients, error) {
	out := &Clients{}
	var apis builtAPIs
	for _, r := range registry {
		b, err := r.build(c, &apis)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", r.name, err)
		}
		if b != nil {
			out.Backends = append(out.Backends, b)
		}
	}
	return out, nil
}

// CheckResult is one backend's line in `gatehouse config check`.
type CheckResult struct {
	Backend string   `json:"backend"`
	Enabled bool     `json:"enabled"`
	Online  string   `json:"online,omitempty"` // "ok" or the error, when checked online
	Notes   []string `json:"notes,omitempty"`  // warnings and what could not be checked
}

// Backends lists every backend gatehouse knows, in registration order.
func Backends() []string {
	out := make([]string, len(registry))
	for i, r := range registry {
		out[i] = r.name
	}
	return out
}

// Check reports each backend; with online it also tries its credentials.
func (cl *Clients) Check(ctx context.Context, online bool) []CheckResult {
	var out []CheckResult
	for _, name := range Backends() {
		r := CheckResult{Backend: name}
		for _, b := range cl.Backends {
			if b.Name() != name {
				continue
			}
			r.Enabled = true
			if online {
				r.Online = "ok"
				notes, err := b.Check(ctx)
				if err != nil {
					r.Online = err.Error()
				}
				r.Notes = notes
			}
		}
		out = append(out, r)
	}
	return out
}
