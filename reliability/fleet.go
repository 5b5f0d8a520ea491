package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/client"
)

// Gateway is one simulated gateway: its Mender key on disk, the directory
// its agent writes credentials into, and its MAC, which is how a scenario
// finds its device on the server.
type Gateway struct {
	Key     ed25519.PrivateKey
	KeyPath string
	OutDir  string
	MAC     string
}

// NewGateways makes n gateways under dir/gateways; set (0–255) keeps the
// MACs of different calls apart.
func (h *Harness) NewGateways(n, set int) ([]*Gateway, error) {
	if n > 1<<16 {
		return nil, fmt.Errorf("at most %d gateways a set", 1<<16)
	}
	out := make([]*Gateway, n)
	for i := range n {
		dir := filepath.Join(h.Dir, "gateways", fmt.Sprintf("%d-%d", set, i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		g := &Gateway{Key: k, KeyPath: filepath.Join(dir, "mender-agent.pem"), OutDir: filepath.Join(dir, "out"),
			MAC: fmt.Sprintf("02:00:%02x:00:%02x:%02x", set, i>>8, i&0xff)}
		if err := os.WriteFile(g.KeyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		out[i] = g
	}
	return out, nil
}

// quiet discards the agents' progress: a thousand agents' lines would
// bury the scenario's own.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// RunAgent runs the agent code in this process until the gateway holds its
// bundle or ctx ends.
func (g *Gateway) RunAgent(ctx context.Context, server string) (*agent.Result, error) {
	return agent.Run(ctx, agent.Config{Server: server, InsecureHTTP: true, KeyPath: g.KeyPath, OutDir: g.OutDir,
		MAC: g.MAC, RestartCommands: []string{}, Logger: quiet})
}

// Bundled reports whether the agent wrote the gateway's files: device-name
// is written last, so its presence means the bundle is complete.
func (g *Gateway) Bundled() (name string, ok bool) {
	b, err := os.ReadFile(filepath.Join(g.OutDir, "device-name"))
	if err != nil {
		return "", false
	}
	return string(b[:len(b)-min(len(b), 1)]), true
}

// WaitDevices lists the devices in state until at least n are there, each
// list with its own deadline, for up to wait; they come keyed by MAC.
func WaitDevices(ctx context.Context, c *client.Client, state gatehouse.State, n int, wait time.Duration) (map[string]*gatehouse.Device, error) {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		byMAC, err := listDevices(ctx, c, state)
		if err == nil && len(byMAC) >= n {
			return byMAC, nil
		}
		if time.Now().After(deadline) {
			return byMAC, fmt.Errorf("%d of %d gateways %s after %v (last error: %v)", len(byMAC), n, state, wait, err)
		}
		select {
		case <-ctx.Done():
			return byMAC, ctx.Err()
		case <-tick.C:
		}
	}
}

// listDevices pages through every device in state.
func listDevices(ctx context.Context, c *client.Client, state gatehouse.State) (map[string]*gatehouse.Device, error) {
	out := map[string]*gatehouse.Device{}
	for offset := 0; ; {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		l, err := c.ListDevices(callCtx, client.ListOptions{State: state, Limit: 500, Offset: offset})
		cancel()
		if err != nil {
			return out, err
		}
		for _, d := range l.Devices {
			out[d.MAC] = d
		}
		offset += len(l.Devices)
		if len(l.Devices) == 0 || offset >= l.Total {
			return out, nil
		}
	}
}
