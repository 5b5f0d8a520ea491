package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestResolveOutputs(t *testing.T) {
	cfg := Config{Root: "/mnt/rootfs", OutDir: "/data/gatehouse", Paths: Paths{
		ConfigToml: "/etc/aziot/config.toml", DeviceCert: "certs/device.pem", CACert: PathNone,
	}}
	out, err := resolveOutputs(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		FileDeviceName: "/data/gatehouse/device-name",
		FileIoTEdgeEnv: "/data/gatehouse/iotedge.env",
		FileDeviceCert: "/data/gatehouse/certs/device.pem",
		FileDeviceKey:  "/data/gatehouse/device.key",
		FileConfigToml: "/etc/aziot/config.toml",
	}
	if !reflect.DeepEqual(out.device, want) {
		t.Errorf("device paths %v", out.device)
	}
	if out.host[FileConfigToml] != "/mnt/rootfs/etc/aziot/config.toml" || out.outDir != "/mnt/rootfs/data/gatehouse" {
		t.Errorf("host paths %v, out dir %s", out.host, out.outDir)
	}
	if out.marker() != "/mnt/rootfs/data/gatehouse/device-name.pending" {
		t.Errorf("marker %s", out.marker())
	}
}

func TestResolveOutputsErrors(t *testing.T) {
	cfg := Config{OutDir: "/x", Paths: Paths{DeviceKey: "/x/device.crt"}}
	_, err := resolveOutputs(&cfg)
	wantExit(t, err, ExitConfig, "both map to /x/device.crt")
	cfg = Config{Server: "https://x", Paths: Paths{DeviceName: PathNone}}
	wantExit(t, cfg.Validate(), ExitConfig, "device-name cannot be switched off")
	cfg = Config{Server: "https://x", ConfigToml: ConfigToml{Attestation: "tpm"}}
	wantExit(t, cfg.Validate(), ExitConfig, "tpm")
}

// Outputs mapped outside OutDir land there, with OutDir still private.
func TestRunWritesMappedOutputs(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	key, _ := os.ReadFile(keyPath)
	cfg, _ := testConfig(t, f, "/data/mender/mender-agent.pem")
	cfg.Root, cfg.OutDir = t.TempDir(), "/var/lib/gatehouse"
	writeRootFile(t, cfg.Root, cfg.KeyPath, key, 0o600)
	cfg.Paths = Paths{ConfigToml: "/etc/aziot/config.toml", IoTEdgeEnv: PathNone, CACert: "/etc/ssl/gatehouse-ca.pem"}
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	r := await(t, runAsync(t.Context(), cfg))
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	checkConfigToml(t, filepath.Join(cfg.Root, "etc/aziot/config.toml"), "gw-01", "0ne00ABCDEF", testSymKey)
	checkFile(t, filepath.Join(cfg.Root, "etc/ssl/gatehouse-ca.pem"), testCA, 0o644)
	if _, err := os.Stat(filepath.Join(cfg.Root, cfg.OutDir, FileIoTEdgeEnv)); !os.IsNotExist(err) {
		t.Errorf("iotedge.env written although switched off: %v", err)
	}
	for dir, mode := range map[string]os.FileMode{"var/lib/gatehouse": 0o700, "etc/aziot": 0o755} {
		if fi, err := os.Stat(filepath.Join(cfg.Root, dir)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", dir, err, fi.Mode().Perm(), mode)
		}
	}
	if len(r.res.Files) != 5 {
		t.Errorf("files %v", r.res.Files)
	}
}
