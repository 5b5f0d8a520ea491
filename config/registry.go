package config

import (
	"gatehouse"
	"gatehouse/azure"
	"gatehouse/mender"
	"gatehouse/vault"
)

// registration is one backend gatehouse knows: how its settings load and
// how its backend is built from them. Adding a backend is a package that
// implements gatehouse.Backend, its settings in Config, and one entry here.
type registration struct {
	name  string
	load  func(c *Config, e *Env) error
	build func(c *Config, apis *builtAPIs) (gatehouse.Backend, error) // nil when off
}

// registry is every backend, in the order steps and checks are listed.
var registry = []registration{
	{"mender", (*Config).loadMender, buildMender},
	{"dps", (*Config).loadDPS, buildDPS},
	{"iothub", (*Config).loadHubs, buildHub},
	{"vault", (*Config).loadVault, buildVault},
}

// builtAPIs are clients one backend's build leaves for another: the IoT
// Hub follow-up learns each gateway's hub from DPS.
type builtAPIs struct {
	dps gatehouse.DPS
}

func buildMender(c *Config, _ *builtAPIs) (gatehouse.Backend, error) {
	if c.Mender == nil {
		return nil, nil
	}
	m, err := mender.New(*c.Mender)
	if err != nil {
		return nil, err
	}
	return mender.NewBackend(m), nil
}

func buildDPS(c *Config, apis *builtAPIs) (gatehouse.Backend, error) {
	if c.DPS == nil {
		return nil, nil
	}
	d, err := azure.NewDPS(*c.DPS)
	if err != nil {
		return nil, err
	}
	apis.dps = d
	return azure.NewDPSBackend(d), nil
}

func buildHub(c *Config, apis *builtAPIs) (gatehouse.Backend, error) {
	if c.Hubs == nil {
		return nil, nil
	}
	h, err := azure.NewIoTHub(*c.Hubs)
	if err != nil {
		return nil, err
	}
	var m azure.Manifests
	if c.Manifests != nil {
		m = c.Manifests
	}
	return azure.NewHubBackend(h, apis.dps, m), nil
}

func buildVault(c *Config, _ *builtAPIs) (gatehouse.Backend, error) {
	if c.Vault == nil {
		return nil, nil
	}
	v, err := vault.New(*c.Vault)
	if err != nil {
		return nil, err
	}
	return vault.NewBackend(v, c.Vault.Sign, c.Vault.Role), nil
}
