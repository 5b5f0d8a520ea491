package agent

import (
	"log/slog"
	"os"
	"path/filepath"
)

// FileConfigToml is the IoT Edge configuration output; it is written only
// when the bundle carries DPS credentials.
const FileConfigToml = "config.toml"

// PendingSuffix names the marker beside device-name that lists the steps
// still to do after the files are written (ack, restart): device-name alone
// cannot tell a finished gateway from one that lost power before its
// services were restarted. The systemd unit starts the agent while it exists.
const PendingSuffix = ".pending"

// outputOrder is the order files are written in: device-name last, since
// its presence is what says (to systemd and people) the gateway is done.
var outputOrder = []string{FileIoTEdgeEnv, FileDeviceCert, FileDeviceKey, FileCACert, FileConfigToml, FileDeviceName}

// outputs are the resolved files of one run.
type outputs struct {
	outDir string            // where OutDir is for this process
	host   map[string]string // output -> path for this process; absent when switched off
	device map[string]string // output -> path on the gateway, for file:// URIs in config.toml
}

// resolveOutputs applies Paths, OutDir and Root. Its errors carry ExitConfig.
func resolveOutputs(c *Config) (*outputs, error) {
	o := &outputs{outDir: c.hostPath(c.OutDir), host: map[string]string{}, device: map[string]string{}}
	seen := map[string]string{}
	for _, name := range outputOrder {
		p := c.Paths.field(name)
		if p == PathNone {
			continue
		}
		if p == "" {
			p = name
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.OutDir, p)
		}
		p = filepath.Clean(p)
		if other, dup := seen[p]; dup {
			return nil, exitErrorf(ExitConfig, "outputs %s and %s both map to %s", other, name, p)
		}
		seen[p] = name
		o.device[name], o.host[name] = p, c.hostPath(p)
	}
	return o, nil
}

func (p Paths) field(name string) string {
	switch name {
	case FileDeviceName:
		return p.DeviceName
	case FileIoTEdgeEnv:
		return p.IoTEdgeEnv
	case FileDeviceCert:
		return p.DeviceCert
	case FileDeviceKey:
		return p.DeviceKey
	case FileCACert:
		return p.CACert
	case FileConfigToml:
		return p.ConfigToml
	}
	return ""
}

// marker is the pending-steps file beside device-name.
func (o *outputs) marker() string { return o.host[FileDeviceName] + PendingSuffix }

// dirMode keeps OutDir private (it holds secrets) while directories the
// image maps outputs into, such as /etc/aziot, stay readable by services.
func (o *outputs) dirMode(dir string) os.FileMode {
	if filepath.Clean(dir) == filepath.Clean(o.outDir) {
		return 0o700
	}
	return 0o755
}

// cleanTemps removes temp files a power cut left behind mid-write, so a
// half-written secret does not linger beside the real outputs.
func (o *outputs) cleanTemps(log *slog.Logger) {
	paths := []string{o.marker()}
	for _, p := range o.host {
		paths = append(paths, p)
	}
	for _, p := range paths {
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(p), tempPrefix(p)+"*"))
		for _, m := range matches {
			if err := os.Remove(m); err == nil {
				log.Info("removed a partly written file left by an interrupted run", "file", m)
			}
		}
	}
}

// tempPrefix is the name prefix of writeFileAtomic's temp files for path.
func tempPrefix(path string) string {
	return "." + filepath.Base(path) + ".tmp-"
}
