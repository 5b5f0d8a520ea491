package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// menderFallbackConf is the configuration Mender reads after the main one;
// settings in the main file win.
const menderFallbackConf = "/var/lib/mender/mender.conf"

// keyLocation is the device key file and where its location came from, for
// log lines that let the operator see why that file was read.
type keyLocation struct {
	device string // path on the gateway
	host   string // path for this process
	source string
}

// findKey decides which key file to use: --key, else Mender's own setting
// (Security.AuthPrivateKey), else Mender's default data store.
func findKey(c *Config) (keyLocation, error) {
	loc := func(p, source string) keyLocation {
		return keyLocation{device: p, host: c.hostPath(p), source: source}
	}
	if c.KeyPath != "" {
		return loc(c.KeyPath, "--key"), nil
	}
	for _, conf := range []string{c.MenderConf, menderFallbackConf} {
		p, err := authPrivateKey(c.hostPath(conf))
		if err != nil {
			return keyLocation{}, exitErrorf(ExitConfig, "mender configuration %s: %w (or pass --key)", conf, err)
		}
		if strings.HasPrefix(p, "pkcs11:") {
			return keyLocation{}, exitErrorf(ExitKey, "mender configuration %s keeps the device key in a PKCS#11 token (%s); "+
				"the agent needs the key as a PEM file: pass --key", conf, strings.SplitN(p, ";", 2)[0])
		}
		if p != "" {
			return loc(p, "Security.AuthPrivateKey in "+conf), nil
		}
	}
	if dir := os.Getenv("MENDER_DATASTORE_DIR"); dir != "" {
		return loc(filepath.Join(dir, "mender-agent.pem"), "MENDER_DATASTORE_DIR"), nil
	}
	return loc(DefaultKeyPath, "Mender's default"), nil
}

// authPrivateKey reads Security.AuthPrivateKey from a mender.conf; "" when
// the file or the setting is absent.
func authPrivateKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var conf struct {
		Security struct {
			AuthPrivateKey string
		}
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return "", fmt.Errorf("not valid JSON: %w", err)
	}
	return strings.TrimSpace(conf.Security.AuthPrivateKey), nil
}
