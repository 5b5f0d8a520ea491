package main

import (
	"bytes"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse/provision"
	"gatehouse/server"
)

func parseFlood(t *testing.T, env map[string]string, args ...string) (*floodLimits, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l, envErr := floodFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if envErr != nil {
		return nil, envErr
	}
	return l, l.check()
}

func TestFloodFlags(t *testing.T) {
	l, err := parseFlood(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg appConfig
	l.apply(&cfg)
	if cfg.DeviceRate != server.DefaultDeviceRate || cfg.DeviceBurst != server.DefaultDeviceBurst ||
		cfg.Jobs.PendingCap != provision.DefaultPendingCap || cfg.Jobs.PendingExpiry != provision.DefaultPendingExpiry {
		t.Errorf("defaults: %+v", cfg)
	}

	env := map[string]string{"GATEHOUSE_DEVICE_RATE": "0.5", "GATEHOUSE_DEVICE_BURST": "40",
		"GATEHOUSE_PENDING_CAP": "500", "GATEHOUSE_PENDING_EXPIRY": "48h"}
	if l, err = parseFlood(t, env, "--device-burst", "60"); err != nil {
		t.Fatal(err)
	}
	cfg = appConfig{}
	l.apply(&cfg)
	if cfg.DeviceRate != 0.5 || cfg.DeviceBurst != 60 || cfg.Jobs.PendingCap != 500 || cfg.Jobs.PendingExpiry != 48*time.Hour {
		t.Errorf("from the environment, the burst from its flag: %+v", cfg)
	}

	if l, err = parseFlood(t, nil, "--device-rate", "0"); err != nil {
		t.Fatal(err)
	}
	cfg = appConfig{}
	l.apply(&cfg)
	if cfg.DeviceRate != rate.Inf {
		t.Errorf("--device-rate 0 gave rate %v, want no limit", cfg.DeviceRate)
	}
}

func TestFloodFlagsRefuseNonsense(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"GATEHOUSE_DEVICE_RATE": "fast"}, nil, "GATEHOUSE_DEVICE_RATE"},
		{map[string]string{"GATEHOUSE_PENDING_EXPIRY": "7d"}, nil, "GATEHOUSE_PENDING_EXPIRY"},
		{nil, []string{"--device-rate", "-1"}, "--device-rate"},
		{nil, []string{"--device-burst", "0"}, "--device-burst"},
		{nil, []string{"--pending-cap", "0"}, "--pending-cap"},
		{nil, []string{"--pending-expiry", "0s"}, "--pending-expiry"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "db")}, tt.args...)
		code := run(t.Context(), args, io.Discard, &stderr, func(k string) string { return tt.env[k] })
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("serve %v with %v: exit %d, %q; want 2 naming %s", tt.args, tt.env, code, stderr.String(), tt.want)
		}
	}
}

func TestStartAppAppliesFloodLimits(t *testing.T) {
	cfg := appConfig{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "gatehouse.db"), Logger: quiet,
		DeviceRate: 3, DeviceBurst: 7}
	a, err := startApp(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.server.DeviceRate != 3 || a.server.DeviceBurst != 7 {
		t.Fatalf("server limit %v/%d, want 3/7", a.server.DeviceRate, a.server.DeviceBurst)
	}
}
