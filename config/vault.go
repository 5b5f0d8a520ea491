package config

import (
	"errors"
	"fmt"

	"gatehouse"
	"gatehouse/vault"
)

// Vault/OpenBao PKI: settings and backend.

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

func buildVault(c *Config, _ *builtAPIs) (gatehouse.Backend, error) {
	if c.Vault == nil {
		return nil, nil
	}
	cfg := *c.Vault
	cfg.Logger = c.logger(cfg.Logger)
	v, err := vault.New(cfg)
	if err != nil {
		return nil, err
	}
	return vault.NewBackend(v, c.Vault.Sign, c.Vault.Role), nil
}
