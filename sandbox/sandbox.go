// Package sandbox starts HTTP simulators of every backend on loopback and
// configures the real clients for them: the set-up the demo, the end-to-end
// tests and the benchmarks share.
package sandbox

import (
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"gatehouse/config"
	"gatehouse/deploy/manifests"
	"gatehouse/manifest"
	"gatehouse/mender"
	"gatehouse/simulate"
	"gatehouse/vault"
)

// Simulators are HTTP stand-ins for every backend, on loopback ports, that
// the real clients talk to exactly as they would to the real services.
type Simulators struct {
	Mender *simulate.MenderServer
	DPS    *simulate.DPSServer
	Hub    *simulate.HubServer
	Vault  *simulate.VaultServer

	menderToken, vaultToken string
}

// Start starts all four; DPS assigns registered devices to the hub
// simulator after assignDelay.
func Start(assignDelay time.Duration) (*Simulators, error) {
	s := &Simulators{menderToken: randomSecret(), vaultToken: randomSecret()}
	var err error
	if s.Mender, err = simulate.NewMenderServer(simulate.MenderServerOptions{Token: s.menderToken}); err != nil {
		return nil, err
	}
	if s.Hub, err = simulate.NewHubServer(simulate.HubServerOptions{}); err != nil {
		s.Close()
		return nil, err
	}
	if s.DPS, err = simulate.NewDPSServer(simulate.DPSServerOptions{Hub: s.Hub.State, AssignDelay: assignDelay}); err != nil {
		s.Close()
		return nil, err
	}
	// The role docs/backends.md recommends: a new role's OpenBao defaults
	// refuse gateway names and the agent's P-256 CSR.
	role := simulate.RecommendedVaultRole()
	if s.Vault, err = simulate.NewVaultServer(simulate.VaultServerOptions{RootToken: s.vaultToken, Role: simVaultRole, RoleConfig: &role}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Config points every client at its simulator, with the simulator's
// credentials, and uses the sample IoT Edge 1.5 manifest.
func (s *Simulators) Config() *config.Config {
	dps, hubs := s.DPS.Config(), s.Hub.Config()
	m, err := manifest.FromBytes("iotedge-1.5.json", manifests.IoTEdge15)
	if err != nil {
		panic("the built-in sample manifest is broken: " + err.Error()) // a test catches this first
	}
	return &config.Config{
		Manifests: m,
		Mender:    &mender.Config{URL: s.Mender.URL, Token: s.menderToken},
		DPS:       &dps,
		Hubs:      &hubs,
		Vault:     &vault.Config{Addr: s.Vault.URL, Role: simVaultRole, Token: s.vaultToken},
	}
}

const simVaultRole = "gateway"

// MenderClient is a gateway's simulated Mender client for this sandbox's
// Mender: started before the gateway is approved, it asks for a token as
// the real one does from boot on, and gets one once gatehouse has accepted
// its key.
func (s *Simulators) MenderClient(key crypto.Signer, mac string, retry time.Duration) (*simulate.MenderClient, error) {
	return simulate.NewMenderClient(simulate.MenderClientOptions{
		ServerURL: s.Mender.URL, Key: key, Identity: map[string]string{"mac": mac}, RetryInterval: retry,
	})
}

// Close stops every simulator that started.
func (s *Simulators) Close() error {
	var errs []error
	if s.Mender != nil {
		errs = append(errs, s.Mender.Close())
	}
	if s.DPS != nil {
		errs = append(errs, s.DPS.Close())
	}
	if s.Hub != nil {
		errs = append(errs, s.Hub.Close())
	}
	if s.Vault != nil {
		errs = append(errs, s.Vault.Close())
	}
	return errors.Join(errs...)
}

func randomSecret() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}
