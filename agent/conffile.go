package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultConfigFile is where packages install the agent's configuration.
const DefaultConfigFile = "/etc/gatehouse/agent.conf"

// FileConfig is a parsed configuration file: KEY=VALUE lines, '#' comments,
// optional quotes around a value. See docs/agent.md for the keys.
type FileConfig struct {
	Path     string
	settings []setting
}

type setting struct {
	key, value string
	line       int
}

// fileKeys maps each key to the Config field it sets. Repeatable keys
// append; others, given twice, keep the last value.
var fileKeys = map[string]func(c *Config, v string) error{
	"SERVER":               func(c *Config, v string) error { c.Server = v; return nil },
	"INSECURE_HTTP":        func(c *Config, v string) error { return setBool(&c.InsecureHTTP, v) },
	"SERVER_CA":            func(c *Config, v string) error { c.ServerCA = v; return nil },
	"SERVER_PIN":           func(c *Config, v string) error { c.ServerPin = v; return nil },
	"KEY":                  func(c *Config, v string) error { c.KeyPath = v; return nil },
	"MENDER_CONF":          func(c *Config, v string) error { c.MenderConf = v; return nil },
	"WAIT_FOR_KEY":         func(c *Config, v string) error { return setBool(&c.WaitForKey, v) },
	"OUT_DIR":              func(c *Config, v string) error { c.OutDir = v; return nil },
	"DEVICE_NAME":          func(c *Config, v string) error { c.Paths.DeviceName = v; return nil },
	"IOTEDGE_ENV":          func(c *Config, v string) error { c.Paths.IoTEdgeEnv = v; return nil },
	"DEVICE_CERT":          func(c *Config, v string) error { c.Paths.DeviceCert = v; return nil },
	"DEVICE_KEY":           func(c *Config, v string) error { c.Paths.DeviceKey = v; return nil },
	"CA_CERT":              func(c *Config, v string) error { c.Paths.CACert = v; return nil },
	"CONFIG_TOML":          func(c *Config, v string) error { c.Paths.ConfigToml = v; return nil },
	"CONFIG_TOML_TEMPLATE": func(c *Config, v string) error { c.ConfigToml.Template = v; return nil },
	"DPS_GLOBAL_ENDPOINT":  func(c *Config, v string) error { c.ConfigToml.GlobalEndpoint = v; return nil },
	"IOTEDGE_ATTESTATION":  func(c *Config, v string) error { c.ConfigToml.Attestation = v; return nil },
	"MAC":                  func(c *Config, v string) error { c.MAC = v; return nil },
	"INTERFACE":            func(c *Config, v string) error { c.Interface = v; return nil },
	"IDENTITY_SCRIPT":      func(c *Config, v string) error { c.IdentityScript = v; return nil },
	"MENDER_RESTART":       func(c *Config, v string) error { c.Restart.Mender = v; return nil },
	"IOTEDGE_RESTART":      func(c *Config, v string) error { c.Restart.IoTEdge = v; return nil },
	"IOTEDGE_FALLBACK":     func(c *Config, v string) error { c.Restart.IoTEdgeFallback = v; return nil },
	"RESTART_EXTRA":        func(c *Config, v string) error { c.Restart.Extra = append(c.Restart.Extra, v); return nil },
	"BACKOFF_MIN":          func(c *Config, v string) error { return setDuration(&c.BackoffMin, v) },
	"BACKOFF_MAX":          func(c *Config, v string) error { return setDuration(&c.BackoffMax, v) },
}

var keyPattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// ReadConfigFile parses the file at path. A missing file is an error
// wrapping fs.ErrNotExist; every error carries ExitConfig.
func ReadConfigFile(path string) (*FileConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ExitError{Code: ExitConfig, Err: fmt.Errorf("config file: %w", err)}
	}
	defer f.Close()
	fc, err := ParseConfigFile(f)
	if err != nil {
		return nil, exitErrorf(ExitConfig, "config file %s: %w", path, err)
	}
	fc.Path = path
	return fc, nil
}

// ParseConfigFile parses configuration lines, refusing unknown keys so a
// typo is an error at the first boot, not a silently ignored setting.
func ParseConfigFile(r io.Reader) (*FileConfig, error) {
	fc := &FileConfig{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !keyPattern.MatchString(key) {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		if fileKeys[key] == nil {
			return nil, fmt.Errorf("line %d: unknown setting %s (known: %s)", n, key, strings.Join(knownKeys(), ", "))
		}
		fc.settings = append(fc.settings, setting{key: key, value: unquote(strings.TrimSpace(value)), line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return fc, nil
}

// Apply sets the fields of cfg the file mentions, skipping keys for which
// skip returns true (those given on the command line, which win).
func (fc *FileConfig) Apply(cfg *Config, skip func(key string) bool) error {
	for _, s := range fc.settings {
		if skip != nil && skip(s.key) {
			continue
		}
		if err := fileKeys[s.key](cfg, s.value); err != nil {
			return exitErrorf(ExitConfig, "config file %s line %d: %s: %w", fc.Path, s.line, s.key, err)
		}
	}
	return nil
}

// IsNotExist reports whether err says a config file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func knownKeys() []string {
	keys := make([]string, 0, len(fileKeys))
	for k := range fileKeys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// unquote strips one pair of matching quotes, for values written as in a
// shell or systemd EnvironmentFile.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func setBool(dst *bool, v string) error {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		*dst = true
	case "0", "no", "false", "off":
		*dst = false
	default:
		return fmt.Errorf("want yes or no, got %s", quote(v))
	}
	return nil
}

func setDuration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		if secs, serr := strconv.Atoi(v); serr == nil {
			d, err = time.Duration(secs)*time.Second, nil
		}
	}
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 30s or 5m, got %s", quote(v))
	}
	*dst = d
	return nil
}
