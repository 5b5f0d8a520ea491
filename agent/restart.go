package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// restartTimeout bounds one restart command: `iotedge config apply` can take
// a while, but a hung command must not keep the unit running forever.
const restartTimeout = 5 * time.Minute

// defaultAziotConfig is where `iotedge config apply` reads without -c.
const defaultAziotConfig = "/etc/aziot/config.toml"

// menderUnits are the services that hold the Mender device key: mender-authd
// in Mender 4.x/5.x, mender-client in 3.x.
var menderUnits = []string{"mender-authd.service", "mender-client.service"}

// unitDirs are where packages and images install systemd units.
var unitDirs = []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// restartEnv is what restart commands learn about the provisioned gateway.
type restartEnv struct {
	name, outDir, configToml string
}

// restartCommands resolves the commands to run after provisioning.
// wroteToml says whether config.toml was written in this provisioning.
func (c *Config) restartCommands(log *slog.Logger, out *outputs, wroteToml bool) []string {
	if c.NoRestart {
		return nil
	}
	if c.RestartCommands != nil {
		return c.RestartCommands
	}
	cmds := c.menderRestart(log)
	cmds = append(cmds, c.iotEdgeRestart(log, out, wroteToml)...)
	for _, e := range c.Restart.Extra {
		if e != "" {
			cmds = append(cmds, e)
		}
	}
	return cmds
}

// menderRestart restarts whichever Mender service is installed, so it
// authenticates at once with the now preauthorized key instead of at its
// next retry, which can be many minutes away.
func (c *Config) menderRestart(log *slog.Logger) []string {
	switch c.Restart.Mender {
	case RestartNone:
		return nil
	case "", RestartAuto:
	default:
		return []string{c.Restart.Mender}
	}
	units := c.installedUnits(menderUnits)
	if len(units) == 0 {
		log.Info("no Mender service installed; not restarting Mender", "looked_for", strings.Join(menderUnits, ","))
		return nil
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		log.Warn("Mender service installed but systemctl not found; not restarting Mender", "units", strings.Join(units, ","))
		return nil
	}
	cmds := make([]string, len(units))
	for i, u := range units {
		cmds[i] = "systemctl restart " + u
	}
	return cmds
}

// iotEdgeRestart applies the new config.toml with the iotedge tool (which
// also restarts the IoT Edge services), or runs the configured fallback on
// gateways that run IoT Edge some other way, e.g. in a container.
func (c *Config) iotEdgeRestart(log *slog.Logger, out *outputs, wroteToml bool) []string {
	switch c.Restart.IoTEdge {
	case RestartNone:
		return nil
	case "", RestartAuto:
	default:
		return []string{c.Restart.IoTEdge}
	}
	if _, err := exec.LookPath("iotedge"); err == nil && wroteToml {
		cmd := "iotedge config apply"
		if p := out.host[FileConfigToml]; p != defaultAziotConfig {
			cmd += " -c " + shellQuote(p)
		}
		return []string{cmd}
	}
	if c.Restart.IoTEdgeFallback != "" {
		return []string{c.Restart.IoTEdgeFallback}
	}
	if wroteToml {
		log.Info("iotedge not installed and no IoT Edge fallback command configured; not restarting IoT Edge")
	}
	return nil
}

// installedUnits lists the units that have a unit file. Looking at files
// rather than asking systemctl works in image builds and tests too.
func (c *Config) installedUnits(units []string) []string {
	var found []string
	for _, u := range units {
		for _, dir := range unitDirs {
			if _, err := os.Stat(c.hostPath(filepath.Join(dir, u))); err == nil {
				found = append(found, u)
				break
			}
		}
	}
	return found
}

// shellQuote quotes s for sh -c.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runRestarts runs every command even when one fails, so a broken Mender
// restart does not also leave IoT Edge unconfigured.
func runRestarts(ctx context.Context, log *slog.Logger, cmds []string, env restartEnv) error {
	var errs multiError
	for _, c := range cmds {
		if err := runRestart(ctx, log, c, env); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return &ExitError{Code: ExitRestart, Err: fmt.Errorf("credentials written, but restarting services failed: %w", errs)}
	}
	return nil
}

// multiError joins errors on one line (errors.Join uses newlines, and the
// agent reports its error as a single log line).
type multiError []error

func (m multiError) Error() string {
	msgs := make([]string, len(m))
	for i, err := range m {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (m multiError) Unwrap() []error { return m }

// runRestart runs one command. The commands see the gateway name and where
// its files are in their environment.
func runRestart(ctx context.Context, log *slog.Logger, command string, env restartEnv) error {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), "GATEHOUSE_DEVICE_NAME="+env.name, "GATEHOUSE_OUT_DIR="+env.outDir,
		"GATEHOUSE_CONFIG_TOML="+env.configToml)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	log.Info("running restart command", "cmd", command)
	err := cmd.Run()
	if err != nil {
		log.Error("restart command failed", "cmd", command, "err", err, "output", tail(out.String(), 500))
		return fmt.Errorf("restart command %q failed: %w%s", command, err, outputHint(out.String(), ctx.Err()))
	}
	log.Debug("restart command done", "cmd", command, "output", tail(out.String(), 500))
	return nil
}

// outputHint is the end of a failed command's output for the final error
// line, where the reason usually is.
func outputHint(out string, ctxErr error) string {
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		return fmt.Sprintf(" (timed out after %v)", restartTimeout)
	}
	if t := tail(out, 200); t != "" {
		return ": " + t
	}
	return ""
}
