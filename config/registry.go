package config

import (
	"gatehouse"
	"gatehouse/rest"
)

// registration is one backend gatehouse knows: how its settings load and
// how its backend is built from them. Adding a backend is a package that
// implements gatehouse.Backend, its settings in Config, a file here with
// its load and build (see mender.go), and one entry in registry.
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
	dps    gatehouse.DPS
	quotas []*rest.Quota
}

// budgeted is a client with call budgets.
type budgeted interface{ Quotas() []*rest.Quota }

// keep notes the quotas of a built client.
func (a *builtAPIs) keep(c budgeted) { a.quotas = append(a.quotas, c.Quotas()...) }
