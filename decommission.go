package gatehouse

import (
	"errors"
	"time"
)

// Removal results, as receipts and dry runs name them.
const (
	RemovalRemoved     = "removed"
	RemovalRevoked     = "revoked"
	RemovalAlreadyGone = "already gone"
)

// Decommission is a gateway's removal from every backend, or with DryRun
// what it would remove. One BackendRemoval per backend, each worked by its
// own durable job.
type Decommission struct {
	DeviceID string           `json:"device_id"`
	Name     string           `json:"name,omitempty"`
	DryRun   bool             `json:"dry_run,omitempty"`
	By       string           `json:"by,omitempty"`
	At       *time.Time       `json:"at,omitempty"`
	Backends []BackendRemoval `json:"backends"`
}

// Done reports whether every backend has removed what it held.
func (d *Decommission) Done() bool {
	for _, b := range d.Backends {
		if b.State != StepSucceeded {
			return false
		}
	}
	return !d.DryRun
}

// BackendRemoval is one backend's part of a decommission: pending, running,
// succeeded or failed (retrying, with LastError). Removals is the receipt
// once it succeeded; in a dry run, what would be removed.
type BackendRemoval struct {
	Backend    string     `json:"backend"`
	State      StepState  `json:"state,omitempty"`
	Attempts   int        `json:"attempts,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	Waiting    string     `json:"waiting,omitempty"`
	Removals   []Removal  `json:"removals"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Forgotten is a device an operator forgot: its key and MAC enroll as a new
// device from then on.
type Forgotten struct {
	DeviceID    string    `json:"device_id"`
	Name        string    `json:"name,omitempty"`
	MAC         string    `json:"mac"`
	Fingerprint string    `json:"fingerprint"`
	State       State     `json:"state"` // what it was when forgotten
	By          string    `json:"forgotten_by"`
	At          time.Time `json:"forgotten_at"`
}

// RemoveLooked is Remove for an object a backend may never have held: in a
// dry run look says whether it is there (an error wrapping
// ErrBackendNotFound: it is not), so the plan lists only what exists.
func RemoveLooked(backend, object, done string, dryRun bool, look, remove func() error) ([]Removal, error) {
	if !dryRun {
		return Remove(backend, object, done, false, remove)
	}
	switch err := look(); {
	case errors.Is(err, ErrBackendNotFound):
		return []Removal{{Backend: backend, Object: object, Result: RemovalAlreadyGone}}, nil
	case err != nil:
		return nil, err
	}
	return Remove(backend, object, done, true, remove)
}
