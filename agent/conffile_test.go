package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfigFile(t *testing.T) {
	text := `# gatehouse agent
SERVER=https://gatehouse.example.com
  KEY = "/data/mender/mender-agent.pem"
WAIT_FOR_KEY=yes
OUT_DIR=/data/gatehouse
CONFIG_TOML=/etc/aziot/config.toml
IOTEDGE_ENV=none
DEVICE_KEY='/etc/ssl/private/gateway key.pem'
IOTEDGE_ATTESTATION=x509
MENDER_RESTART=none
IOTEDGE_FALLBACK=docker restart iotedge
RESTART_EXTRA=systemctl restart app-a
RESTART_EXTRA=systemctl restart app-b # not a comment: values run to the end of the line
BACKOFF_MAX=5m
BACKOFF_MIN=2
`
	fc, err := ParseConfigFile(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := fc.Apply(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Server: "https://gatehouse.example.com", KeyPath: "/data/mender/mender-agent.pem", WaitForKey: true,
		OutDir:     "/data/gatehouse",
		Paths:      Paths{ConfigToml: "/etc/aziot/config.toml", IoTEdgeEnv: PathNone, DeviceKey: "/etc/ssl/private/gateway key.pem"},
		ConfigToml: ConfigToml{Attestation: AttestX509},
		Restart: Restart{Mender: RestartNone, IoTEdgeFallback: "docker restart iotedge",
			Extra: []string{"systemctl restart app-a", "systemctl restart app-b # not a comment: values run to the end of the line"}},
		BackoffMax: 5 * time.Minute, BackoffMin: 2 * time.Second,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestConfigFileSkipsCommandLine(t *testing.T) {
	fc, err := ParseConfigFile(strings.NewReader("SERVER=https://from-file\nOUT_DIR=/from-file\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Server: "https://from-flag"}
	fc.Apply(&cfg, func(key string) bool { return key == "SERVER" })
	if cfg.Server != "https://from-flag" || cfg.OutDir != "/from-file" {
		t.Errorf("got %+v", cfg)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for text, want := range map[string]string{
		"SERVR=https://x\n":     "line 1: unknown setting SERVR",
		"\n# c\nSERVER\n":       "line 3: want KEY=VALUE",
		"server=https://x\n":    "line 1: want KEY=VALUE",
		"WAIT_FOR_KEY=maybe\n":  "want yes or no",
		"BACKOFF_MAX=forever\n": "want a duration",
	} {
		fc, err := ParseConfigFile(strings.NewReader(text))
		if err == nil {
			var cfg Config
			err = fc.Apply(&cfg, nil)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", text, err, want)
		}
	}
}

func TestReadConfigFile(t *testing.T) {
	_, err := ReadConfigFile(filepath.Join(t.TempDir(), "agent.conf"))
	if !IsNotExist(err) || ExitCode(err) != ExitConfig {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "agent.conf")
	os.WriteFile(path, []byte("BOGUS=1\n"), 0o644)
	_, err = ReadConfigFile(path)
	wantExit(t, err, ExitConfig, path, "BOGUS")
}

// The config file shipped in the packages must parse and keep the contract.
func TestShippedConfigFile(t *testing.T) {
	fc, err := ReadConfigFile("../deploy/agent.conf")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := fc.Apply(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	cfg.Server = "https://gatehouse.example.com"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	out, err := resolveOutputs(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if out.host[FileDeviceName] != "/var/lib/gatehouse/device-name" || out.host[FileConfigToml] != defaultAziotConfig {
		t.Errorf("shipped outputs %v", out.host)
	}
}
