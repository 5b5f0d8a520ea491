package vault

import (
	"context"

	"gatehouse"
)

var (
	_ gatehouse.Rekeyer     = (*Backend)(nil)
	_ gatehouse.CertRevoker = (*Backend)(nil)
)

// Rekey gets the gateway a new certificate for the same name, issued with a
// new key or signed for the new key's CSR, with Provision's guard against
// lost answers: an attempt records itself first, and a rerun revokes what
// the lost attempt issued. The certificate being replaced is not revoked
// here: that waits until the new one is recorded (gatehouse enqueues it with
// the step's success), so the gateway is never left without a valid one
// and a rerun never revokes the certificate that was kept.
func (b *Backend) Rekey(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	// The sweep of a lost attempt lists what was issued from minutes before
	// the attempt's recorded time: the replaced certificate is among them
	// only when it is that young, and revoking it early is what happens to
	// it anyway.
	return b.Provision(ctx, in)
}
