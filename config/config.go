// Package config reads gatehouse's backend settings from the environment or
// a KEY=VALUE file, secrets also from *_FILE paths, and builds the backend
// clients. Each backend is optional: it is on when its address is set.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/manifest"
	"gatehouse/mender"
	"gatehouse/rest"
	"gatehouse/sso"
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
	// Logger, if set, is given to every backend client Build makes, for
	// its debug lines; a backend's own Logger wins.
	Logger *slog.Logger
	// OIDC is single sign-on for operators; nil means off.
	OIDC *sso.Config
}

// Load reads every backend's settings and validates those that are on,
// reporting every problem at once.
func Load(e *Env) (*Config, error) {
	c := &Config{}
	var errs []error
	for _, r := range registry {
		errs = append(errs, r.load(c, e))
	}
	errs = append(errs, c.loadManifests(e), c.loadWebhook(e), c.loadFollow(e), c.loadOIDC(e))
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

// logger is the logger a backend client gets: its own, else the common one.
func (c *Config) logger(own *slog.Logger) *slog.Logger {
	if own != nil {
		return own
	}
	return c.Logger
}

// Clients are the built backends, in registration order.
type Clients struct {
	Backends []gatehouse.Backend
	// Quotas are the clients' call budgets, which replicas share through
	// their database.
	Quotas []*rest.Quota
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
	out.Quotas = apis.quotas
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
