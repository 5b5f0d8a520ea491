package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"gatehouse"
)

// pending is what remains to do once the files are written; it lives in
// the marker file beside device-name (see outputs.marker).
type pending struct {
	ack     bool // the server still holds the sealed bundle
	restart bool // the services have not picked up the credentials
	toml    bool // config.toml was written, so IoT Edge needs applying
}

// save writes the marker atomically, or removes it when nothing is left.
func (p pending) save(path string) error {
	if !p.ack && !p.restart {
		return removeDurably(path)
	}
	var lines []string
	for _, w := range []struct {
		word string
		on   bool
	}{{"ack", p.ack}, {"restart", p.restart}, {"config-toml", p.toml}} {
		if w.on {
			lines = append(lines, w.word)
		}
	}
	return writeFileAtomic(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// readPending reads a marker; ok is false when there is none.
func readPending(path string) (p pending, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pending{}, false, nil
	}
	if err != nil {
		return pending{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	for _, w := range strings.Fields(string(data)) {
		switch w {
		case "ack":
			p.ack = true
		case "restart":
			p.restart = true
		case "config-toml":
			p.toml = true
		}
	}
	return p, true, nil
}

// prior is a gateway provisioned by an earlier run.
type prior struct {
	name  string
	steps pending // what that run left undone
}

// priorRun returns the earlier provisioning when device-name exists, and
// nil when this run must provision (none yet, or Force).
func (s *session) priorRun() (*prior, error) {
	path := s.out.host[FileDeviceName]
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	name := strings.TrimSpace(string(data))
	if err := gatehouse.ValidateName(name); err != nil {
		s.log.Warn("device-name does not hold a valid name; provisioning again", "file", path)
		return nil, nil
	}
	if s.cfg.Force {
		s.log.Info("provisioned as "+name+", provisioning again as asked (--force)", "file", path)
		return nil, nil
	}
	steps, _, err := readPending(s.out.marker())
	if err != nil {
		return nil, err
	}
	return &prior{name: name, steps: steps}, nil
}

// resume finishes what an interrupted run left (confirming receipt,
// restarting services) or, when nothing is left, just says so.
func (s *session) resume(ctx context.Context, p *prior) (*Result, error) {
	res := &Result{Name: p.name}
	if !p.steps.ack && !p.steps.restart {
		s.log.Info(fmt.Sprintf("already provisioned as %s; nothing to do (remove %s or pass --force to provision again)",
			p.name, s.out.host[FileDeviceName]))
		return res, nil
	}
	s.log.Info(fmt.Sprintf("provisioned as %s, but an earlier run stopped before finishing; finishing now", p.name),
		"ack", p.steps.ack, "restart", p.steps.restart)
	if p.steps.ack {
		if err := s.connect(ctx); err != nil {
			return nil, err
		}
		res.Fingerprint = s.id.fingerprint
	}
	if err := s.finish(ctx, p.name, p.steps); err != nil {
		return res, err
	}
	s.log.Info("provisioned as " + p.name)
	return res, nil
}
