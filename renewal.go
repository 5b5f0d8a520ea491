package gatehouse

import (
	"context"
	"time"
)

// Renewer is a backend that renews a provisioned gateway's certificate and
// revokes the ones it replaced.
type Renewer interface {
	Backend
	// Renew gets a fresh certificate for the gateway. Like a provisioning
	// step it must leave at most one new valid certificate however often it
	// runs: see RenewInput.Lost.
	Renew(ctx context.Context, in *RenewInput) (*StepResult, error)
	// RevokeCert revokes one certificate by serial; one the backend does
	// not hold is an error wrapping ErrBackendNotFound.
	RevokeCert(ctx context.Context, serial string) error
}

// RenewInput is what a renewal knows of the gateway.
type RenewInput struct {
	Device *Device
	// CSR is the agent's request for its certificate key (sign mode).
	CSR string
	// Lost, when set, is when an earlier attempt asked the backend without
	// its answer being kept: whatever it issued since then, except the
	// serials Keep names, must be revoked before asking again.
	Lost time.Time
	// Keep says whether gatehouse keeps a serial as the gateway's; such
	// certificates are never taken for a lost attempt's.
	Keep func(serial string) bool
}
