package gatehouse

import (
	"context"
	"errors"
	"strings"
)

// Backend is one service gateways are provisioned into. Each lives in one
// package (its client and its rules) and is turned on by one registration
// in package config; provisioning runs whatever parts it implements:
// Provisioner, Follower, Decommissioner.
type Backend interface {
	// Name is what logs, reasons and `gatehouse config check` call it.
	Name() string
	// NameTaken lists where in this backend a gateway name is already in
	// use (empty: free), so approval can refuse it before creating anything.
	NameTaken(ctx context.Context, name string) ([]string, error)
	// Check proves the settings work with harmless calls. Notes are
	// warnings and what could not be checked; err is what must be fixed.
	Check(ctx context.Context) (notes []string, err error)
}

// Provisioner is a backend with a provisioning step: the gateway gets its
// bundle once every provisioner's step has succeeded.
type Provisioner interface {
	Backend
	Step() StepName
	// Provision creates or adopts the gateway's object in the backend. It
	// runs again after failures, lost answers and crashes, and must then
	// converge on exactly one object per gateway.
	Provision(ctx context.Context, in *StepInput) (*StepResult, error)
}

// Follower is a backend that finishes a gateway's cloud side after it is
// provisioned, looking again and again until it is done or stalls.
type Follower interface {
	Backend
	Step() StepName
	// Follow takes one look and does what is due.
	Follow(ctx context.Context, in *StepInput) (*FollowResult, error)
}

// Decommissioner removes what a backend holds for a gateway.
type Decommissioner interface {
	Backend
	// Decommission removes the gateway's objects, or with dryRun only says
	// what it would remove. Objects already gone are not an error.
	Decommission(ctx context.Context, in *StepInput, dryRun bool) ([]Removal, error)
}

// StepInput is what a backend's step knows of the gateway it works on.
type StepInput struct {
	Device *Device
	Key    *DeviceKey
	// Recorded is the step's output so far: what earlier attempts
	// recorded with Record, or the output of the step that succeeded.
	Recorded map[string]string
	// Record merges values into the step's output (an empty value deletes
	// its key) and commits them at once, before the step calls out, so a
	// later attempt after a lost answer or a crash knows what may already
	// exist. The step's final Output replaces everything recorded.
	Record func(ctx context.Context, kv map[string]string) error
	// Serials are the certificates gatehouse kept for the gateway that are
	// not revoked yet, for a decommission to revoke besides the recorded one.
	Serials []string
}

// StepResult is what a successful step produced.
type StepResult struct {
	// Output is shown to operators and kept; Outputs below name the keys
	// the bundle is built from.
	Output map[string]string
	// Secrets are sealed to the device at once and stored only sealed,
	// under protocol field names; nothing keeps them in clear.
	Secrets map[string][]byte
}

// FollowResult is the outcome of one look by a Follower.
type FollowResult struct {
	// Done: the follow-up finished; Output is recorded with the step.
	Done   bool
	Output map[string]string
	// Waiting says what the follow-up still waits for (not done yet).
	Waiting string
	// Stalled says why it cannot go on without an operator.
	Stalled string
	// Events are timeline entries worth keeping (each kind/detail once).
	Events []Event
}

// Removal is one object a decommission removed, or would remove.
type Removal struct {
	Backend string `json:"backend"`
	Object  string `json:"object"`
	// Result is "removed" (or "revoked"), "already gone", or "would
	// remove" in a dry run.
	Result string `json:"result"`
}

// Step output keys that the bundle and the device view read.
const (
	OutMenderDeviceID    = "mender_device_id"
	OutDPSIDScope        = "dps_id_scope"
	OutDPSRegistrationID = "dps_registration_id"
	OutCertificate       = "certificate"
	OutCAChain           = "ca_chain"
	OutSerial            = "serial"
	OutAssignedHub       = "assigned_hub"
)

// Remove removes one object of a gateway, unless dryRun, and says what came
// of it: done (say "removed" or "revoked"), "already gone" when the backend
// no longer holds it, or "would <done>" in a dry run.
func Remove(backend, object, done string, dryRun bool, remove func() error) ([]Removal, error) {
	r := Removal{Backend: backend, Object: object, Result: "would " + strings.TrimSuffix(done, "d")}
	if dryRun {
		return []Removal{r}, nil
	}
	switch err := remove(); {
	case errors.Is(err, ErrBackendNotFound):
		r.Result = "already gone"
	case err != nil:
		return nil, err
	default:
		r.Result = done
	}
	return []Removal{r}, nil
}

// Renamer is a backend whose objects can take a gateway's new name. A
// backend that is neither Renamer nor FixedName refuses renames too.
type Renamer interface {
	Backend
	// Rename gives the gateway's object the new name (in.Device still
	// carries the old one). It runs again after a lost answer or a refused
	// rename elsewhere, so renaming to the name it has is success. Its
	// NameTaken is not asked first: it refuses (gatehouse.ECONFLICT) a name
	// another object holds, and accepts one only its own object holds.
	Rename(ctx context.Context, in *StepInput, newName string) error
}

// FixedName is a backend whose objects keep the name they were made with.
type FixedName interface {
	Backend
	// FixedNameReason tells the operator why, and what to do instead.
	FixedNameReason() string
}
