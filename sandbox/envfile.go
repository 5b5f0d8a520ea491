package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gatehouse/deploy/manifests"
)

// WriteEnvFile writes, in dir, a `gatehouse serve --config` file pointing
// every backend at these simulators, and the sample manifest it names; it
// returns the config file's path. A serve process started from it talks to
// simulators that outlive it, so a test can kill and restart the server and
// still count what each backend holds.
func (s *Simulators) WriteEnvFile(dir string) (string, error) {
	manifest := filepath.Join(dir, "iotedge-1.5.json")
	if err := os.WriteFile(manifest, manifests.IoTEdge15, 0o600); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	dps, hubs := s.DPS.Config(), s.Hub.Config()
	var conns, endpoints []string
	for _, cs := range hubs.Hubs {
		conns = append(conns, secretConnectionString(cs.HostName, cs.SharedAccessKeyName, cs.SharedAccessKey))
	}
	for host, url := range hubs.Endpoints {
		endpoints = append(endpoints, host+"="+url)
	}
	lines := []string{
		"GATEHOUSE_MANIFEST=" + manifest,
		"GATEHOUSE_MENDER_URL=" + s.Mender.URL,
		"GATEHOUSE_MENDER_TOKEN=" + s.menderToken,
		"GATEHOUSE_DPS_CONNECTION_STRING=" + secretConnectionString(dps.ConnectionString.HostName,
			dps.ConnectionString.SharedAccessKeyName, dps.ConnectionString.SharedAccessKey),
		"GATEHOUSE_DPS_ID_SCOPE=" + dps.IDScope,
		"GATEHOUSE_DPS_ENDPOINT=" + dps.Endpoint,
		"GATEHOUSE_IOTHUB_CONNECTION_STRINGS=" + strings.Join(conns, " "),
		"GATEHOUSE_IOTHUB_ENDPOINTS=" + strings.Join(endpoints, " "),
		"GATEHOUSE_VAULT_ADDR=" + s.Vault.URL,
		"GATEHOUSE_VAULT_ROLE=" + simVaultRole,
		"GATEHOUSE_VAULT_TOKEN=" + s.vaultToken,
	}
	path := filepath.Join(dir, "gatehouse.env")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	return path, nil
}

// secretConnectionString spells a connection string with its key, which
// azure.ConnectionString's String masks on purpose.
func secretConnectionString(host, keyName, key string) string {
	return "HostName=" + host + ";SharedAccessKeyName=" + keyName + ";SharedAccessKey=" + key
}
