package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/sandbox"
)

// startSimulated runs the real app on a SQLite file of its own, its
// backends the HTTP simulators answering after latency, with tweak (if
// any) applied to its configuration first. Both stop when the test ends.
func startSimulated(t *testing.T, latency time.Duration, tweak func(*appConfig)) (*sandbox.Simulators, *app) {
	t.Helper()
	sims, err := sandbox.Start(latency)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sims.Close() })
	cfg, err := appFromConfig(sims.Config())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.DB = "127.0.0.1:0", filepath.Join(t.TempDir(), "gatehouse.db")
	if tweak != nil {
		tweak(&cfg)
	}
	a, err := startApp(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return sims, a
}

// operatorEnv is the CLI's environment for a new operator token on a.
func operatorEnv(t *testing.T, a *app, name string) map[string]string {
	t.Helper()
	token, _, err := a.svc.CreateToken(context.Background(), provision.TokenSpec{Name: name, Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"GATEHOUSE_SERVER": a.server.URL(), "GATEHOUSE_TOKEN": token}
}
