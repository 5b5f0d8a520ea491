package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"gatehouse/protocol"
)

// aziotConfig is the part of IoT Edge's config.toml the agent writes, with
// the field names aziot-identityd reads.
type aziotConfig struct {
	Provisioning struct {
		Source         string `toml:"source"`
		GlobalEndpoint string `toml:"global_endpoint"`
		IDScope        string `toml:"id_scope"`
		Attestation    struct {
			Method         string `toml:"method"`
			RegistrationID string `toml:"registration_id"`
			SymmetricKey   struct {
				Value string `toml:"value"`
			} `toml:"symmetric_key"`
			IdentityCert string `toml:"identity_cert"`
			IdentityPK   string `toml:"identity_pk"`
		} `toml:"attestation"`
	} `toml:"provisioning"`
}

// parseAziot parses config.toml strictly: every key must be one we expect.
func parseAziot(t *testing.T, data []byte) aziotConfig {
	t.Helper()
	var c aziotConfig
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		t.Fatalf("config.toml does not parse as TOML: %v\n%s", err, data)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Errorf("config.toml has unexpected keys %v", u)
	}
	return c
}

// checkConfigToml checks a symmetric-key config.toml written by a run.
func checkConfigToml(t *testing.T, path, name, scope, key string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("config.toml mode %v, want 0600: it holds the DPS key", fi.Mode().Perm())
	}
	c := parseAziot(t, data)
	p := c.Provisioning
	if p.Source != "dps" || p.GlobalEndpoint != DefaultDPSEndpoint || p.IDScope != scope {
		t.Errorf("provisioning %+v", p)
	}
	a := p.Attestation
	if a.Method != "symmetric_key" || a.RegistrationID != name || a.SymmetricKey.Value != key {
		t.Errorf("attestation %+v", a)
	}
}

// bundleFiles opens b and lays it out with the default outputs in a temp dir.
func bundleFiles(t *testing.T, b *protocol.Bundle, id *identity) ([]outFile, error) {
	t.Helper()
	l := testLayout(t, Config{OutDir: t.TempDir()})
	creds, err := openBundle(b, id)
	if err != nil {
		return nil, err
	}
	return l.files(creds)
}

func testLayout(t *testing.T, cfg Config) *layout {
	t.Helper()
	cfg = cfg.withDefaults()
	_, log := newLogs(t)
	out, err := resolveOutputs(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := loadEdgeTemplate(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &layout{out: out, tmpl: tmpl, toml: cfg.ConfigToml, log: log}
}

func fileData(files []outFile, name string) []byte {
	for _, f := range files {
		if f.name == name {
			return f.data
		}
	}
	return nil
}

func TestConfigTomlEscapesValues(t *testing.T) {
	l := testLayout(t, Config{OutDir: "/var/lib/gatehouse"})
	// Values a hostile or broken server might send: each must come back
	// verbatim, without closing the string or adding settings.
	evil := "a\"b\\c\nd\te\x01f\x7fg'h ünï"
	creds := &credentials{name: "gw-01", dps: &dpsCredentials{idScope: evil, registrationID: "gw-01\"\n[x]", key: evil}}
	files, err := l.files(creds)
	if err != nil {
		t.Fatal(err)
	}
	c := parseAziot(t, fileData(files, FileConfigToml))
	if c.Provisioning.IDScope != evil || c.Provisioning.Attestation.SymmetricKey.Value != evil ||
		c.Provisioning.Attestation.RegistrationID != "gw-01\"\n[x]" {
		t.Errorf("values changed on the way through TOML: %+v", c.Provisioning)
	}
}

func TestConfigTomlX509(t *testing.T) {
	cfg := Config{OutDir: "/var/lib/gatehouse", ConfigToml: ConfigToml{Attestation: AttestX509}}
	cfg.Paths.DeviceKey = "/etc/aziot/secrets/device id.key"
	l := testLayout(t, cfg)
	creds := &credentials{name: "gw-01", dps: &dpsCredentials{"0ne00ABCDEF", "gw-01", testSymKey},
		cert: []byte(testCert), key: []byte(testPrivKey), ca: []byte(testCA)}
	files, err := l.files(creds)
	if err != nil {
		t.Fatal(err)
	}
	a := parseAziot(t, fileData(files, FileConfigToml)).Provisioning.Attestation
	if a.Method != "x509" || a.RegistrationID != "gw-01" || a.IdentityCert != "file:///var/lib/gatehouse/device.crt" ||
		a.IdentityPK != "file:///etc/aziot/secrets/device%20id.key" || a.SymmetricKey.Value != "" {
		t.Errorf("attestation %+v", a)
	}

	// Without a certificate the symmetric key is used, with a warning.
	creds.cert, creds.key = nil, nil
	files, err = l.files(creds)
	if err != nil {
		t.Fatal(err)
	}
	if a := parseAziot(t, fileData(files, FileConfigToml)).Provisioning.Attestation; a.Method != "symmetric_key" {
		t.Errorf("attestation without a certificate: %+v", a)
	}
}

func TestConfigTomlCustomTemplate(t *testing.T) {
	root := t.TempDir()
	tmpl := "hostname = {{ toml .Name }}\n[provisioning]\nsource = \"dps\"\nid_scope = {{ toml .IDScope }}\n" +
		"global_endpoint = {{ toml .GlobalEndpoint }}\n[provisioning.attestation]\nmethod = \"symmetric_key\"\n" +
		"registration_id = {{ toml .RegistrationID }}\nsymmetric_key = { value = {{ toml .SymmetricKey }} }\n" +
		"trust_bundle_cert = {{ toml .CACertURI }}\n"
	if err := os.MkdirAll(filepath.Join(root, "etc/gatehouse"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/gatehouse/config.toml.tmpl"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	l := testLayout(t, Config{Root: root, OutDir: "/var/lib/gatehouse",
		ConfigToml: ConfigToml{Template: "/etc/gatehouse/config.toml.tmpl", GlobalEndpoint: "https://dps.example.net"}})
	files, err := l.files(&credentials{name: "gw-07", dps: &dpsCredentials{"0ne00ABCDEF", "gw-07", testSymKey}, ca: []byte(testCA)})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if _, err := toml.Decode(string(fileData(files, FileConfigToml)), &c); err != nil {
		t.Fatal(err)
	}
	prov := c["provisioning"].(map[string]any)
	if c["hostname"] != "gw-07" || prov["global_endpoint"] != "https://dps.example.net" ||
		prov["attestation"].(map[string]any)["trust_bundle_cert"] != "file:///var/lib/gatehouse/ca.crt" {
		t.Errorf("rendered %v", c)
	}
}

func TestConfigTomlBrokenTemplate(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"syntax":        "id_scope = {{ toml .IDScope ",
		"unknown field": "id_scope = {{ toml .Scope }}",
		"unknown func":  "id_scope = {{ yaml .IDScope }}",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			os.WriteFile(path, []byte(text), 0o644)
			cfg := Config{ConfigToml: ConfigToml{Template: path}}
			_, err := loadEdgeTemplate(&cfg)
			wantExit(t, err, ExitConfig, "config.toml template")
		})
	}
	cfg := Config{ConfigToml: ConfigToml{Template: filepath.Join(dir, "missing")}}
	_, err := loadEdgeTemplate(&cfg)
	wantExit(t, err, ExitConfig, "missing")
}

func TestConfigTomlOnlyWithDPS(t *testing.T) {
	l := testLayout(t, Config{OutDir: t.TempDir()})
	files, err := l.files(&credentials{name: "gw-01", cert: []byte(testCert), key: []byte(testPrivKey)})
	if err != nil {
		t.Fatal(err)
	}
	if fileData(files, FileConfigToml) != nil || fileData(files, FileIoTEdgeEnv) != nil {
		t.Error("IoT Edge files written for a bundle without DPS credentials")
	}
}
