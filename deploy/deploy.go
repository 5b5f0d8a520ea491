// Package deploy carries the files that install gatehouse-agent on a
// gateway (systemd unit, default configuration), so the package builders
// and their tests use exactly the files in this directory.
package deploy

import _ "embed"

// AgentUnit is systemd/gatehouse-agent.service.
//
//go:embed systemd/gatehouse-agent.service
var AgentUnit []byte

// AgentConf is agent.conf, installed as /etc/gatehouse/agent.conf.
//
//go:embed agent.conf
var AgentConf []byte

// RenewUnit is systemd/gatehouse-agent-renew.service: one renewal run.
//
//go:embed systemd/gatehouse-agent-renew.service
var RenewUnit []byte

// RenewTimer is systemd/gatehouse-agent-renew.timer: the daily look.
//
//go:embed systemd/gatehouse-agent-renew.timer
var RenewTimer []byte
