package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"gatehouse/provision"
	"gatehouse/server"
)

// floodLimits are serve's bounds against enrollment floods: the device API's
// rate limit per source address and the pending queue's cap and expiry.
type floodLimits struct {
	rate   float64 // requests a second; 0 turns the limit off
	burst  int
	cap    int
	expiry time.Duration
}

// floodFlags defines the flood-limit flags on fs, each defaulting to its
// environment variable, else to the built-in default. A malformed variable
// is an error, as a malformed flag is.
func floodFlags(fs *flag.FlagSet, getenv func(string) string) (*floodLimits, error) {
	l := &floodLimits{rate: float64(server.DefaultDeviceRate), burst: server.DefaultDeviceBurst,
		cap: provision.DefaultPendingCap, expiry: provision.DefaultPendingExpiry}
	err := errors.Join(
		envFloat(getenv, "GATEHOUSE_DEVICE_RATE", &l.rate),
		envInt(getenv, "GATEHOUSE_DEVICE_BURST", &l.burst),
		envInt(getenv, "GATEHOUSE_PENDING_CAP", &l.cap),
		envDuration(getenv, "GATEHOUSE_PENDING_EXPIRY", &l.expiry),
	)
	fs.Float64Var(&l.rate, "device-rate", l.rate, "device API requests a second each source address (IPv4 address, IPv6 /64) may make "+
		"after its burst; 0 turns the limit off, e.g. behind a proxy, where every request comes from the proxy (env GATEHOUSE_DEVICE_RATE)")
	fs.IntVar(&l.burst, "device-burst", l.burst, "device API requests a source address may make at once (env GATEHOUSE_DEVICE_BURST)")
	fs.IntVar(&l.cap, "pending-cap", l.cap, "gateways that may wait for approval at once; past it new keys are refused "+
		"until an operator approves or dismisses some (env GATEHOUSE_PENDING_CAP)")
	fs.DurationVar(&l.expiry, "pending-expiry", l.expiry, "remove pending gateways not heard from for this long (env GATEHOUSE_PENDING_EXPIRY)")
	return l, err
}

// check refuses limits that would refuse every gateway or none for ever.
func (l *floodLimits) check() error {
	switch {
	case l.rate < 0:
		return errors.New("--device-rate must not be negative (0 turns the limit off)")
	case l.burst < 1:
		return errors.New("--device-burst must be at least 1")
	case l.cap < 1:
		return errors.New("--pending-cap must be at least 1")
	case l.expiry <= 0:
		return errors.New("--pending-expiry must be positive")
	}
	return nil
}

// apply sets the limits on the server and the provisioning service.
func (l *floodLimits) apply(cfg *appConfig) {
	cfg.DeviceRate, cfg.DeviceBurst = rate.Limit(l.rate), l.burst
	if l.rate == 0 {
		cfg.DeviceRate = rate.Inf
	}
	cfg.Jobs.PendingCap, cfg.Jobs.PendingExpiry = l.cap, l.expiry
}

func envFloat(getenv func(string) string, key string, v *float64) error {
	if s := getenv(key); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%s=%q is not a number", key, s)
		}
		*v = f
	}
	return nil
}

func envInt(getenv func(string) string, key string, v *int) error {
	if s := getenv(key); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%s=%q is not a whole number", key, s)
		}
		*v = n
	}
	return nil
}

func envDuration(getenv func(string) string, key string, v *time.Duration) error {
	if s := getenv(key); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s=%q is not a duration such as 168h", key, s)
		}
		*v = d
	}
	return nil
}
