package provision

import (
	"gatehouse"
)

// provisioners are the configured backends with a provisioning step, in
// registration order.
func (s *Service) provisioners() []gatehouse.Provisioner {
	var out []gatehouse.Provisioner
	for _, b := range s.cfg.Backends {
		if p, ok := b.(gatehouse.Provisioner); ok {
			out = append(out, p)
		}
	}
	return out
}

func (s *Service) provisioner(name gatehouse.StepName) gatehouse.Provisioner {
	for _, p := range s.provisioners() {
		if p.Step() == name {
			return p
		}
	}
	return nil
}

// follower is the backend that finishes a provisioned gateway's cloud side,
// or nil. A follower may say it lacks what it needs (DPS, a manifest).
func (s *Service) follower() gatehouse.Follower {
	for _, b := range s.cfg.Backends {
		f, ok := b.(gatehouse.Follower)
		if !ok {
			continue
		}
		if c, ok := f.(interface{ Follows() bool }); ok && !c.Follows() {
			continue
		}
		return f
	}
	return nil
}

// enabledSteps lists the provisioning steps of the configured backends.
func (s *Service) enabledSteps() []gatehouse.StepName {
	var out []gatehouse.StepName
	for _, p := range s.provisioners() {
		out = append(out, p.Step())
	}
	return out
}
