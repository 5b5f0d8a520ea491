package config

import (
	"errors"
	"fmt"

	"gatehouse"
	"gatehouse/mender"
)

// Mender: settings and backend.

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

func buildMender(c *Config, apis *builtAPIs) (gatehouse.Backend, error) {
	if c.Mender == nil {
		return nil, nil
	}
	cfg := *c.Mender
	cfg.Logger = c.logger(cfg.Logger)
	m, err := mender.New(cfg)
	if err != nil {
		return nil, err
	}
	apis.keep(m)
	return mender.NewBackend(m), nil
}
