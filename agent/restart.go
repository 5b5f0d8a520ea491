package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"
)

// restartTimeout bounds one restart command: `iotedge config apply` can take
// a while, but a hung command must not keep the unit running forever.
const restartTimeout = 5 * time.Minute

// runRestarts runs every command even when one fails, so a broken Mender
// restart does not also leave IoT Edge unconfigured. The commands see the
// gateway name and output directory in their environment.
func runRestarts(ctx context.Context, log *slog.Logger, cmds []string, name, outDir string) error {
	var errs multiError
	for _, c := range cmds {
		if err := runRestart(ctx, log, c, name, outDir); err != nil {
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

func runRestart(ctx context.Context, log *slog.Logger, command, name, outDir string) error {
	ctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), "GATEHOUSE_DEVICE_NAME="+name, "GATEHOUSE_OUT_DIR="+outDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	log.Info("running restart command", "cmd", command)
	err := cmd.Run()
	if err != nil {
		log.Error("restart command failed", "cmd", command, "err", err, "output", excerpt(out.String(), 500))
		return fmt.Errorf("%q: %w", command, err)
	}
	log.Debug("restart command done", "cmd", command, "output", excerpt(out.String(), 500))
	return nil
}
