package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gatehouse"
)

var _ gatehouse.Renewer = (*Backend)(nil)

// Renew gets the gateway a fresh certificate the way Provision does: the
// caller recorded the attempt before calling, so an attempt whose answer was
// lost (in.Lost) is swept first, sparing the certificates gatehouse keeps.
func (b *Backend) Renew(ctx context.Context, in *gatehouse.RenewInput) (*gatehouse.StepResult, error) {
	name := in.Device.Name
	if !in.Lost.IsZero() {
		if err := b.revokeLostExcept(ctx, name, in.Lost, in.Keep); err != nil {
			return nil, err
		}
	}
	c, want, err := b.certificate(ctx, &gatehouse.StepInput{Device: in.Device, Key: &gatehouse.DeviceKey{CSR: in.CSR}})
	if err != nil {
		return nil, b.explain(err)
	}
	if err := b.verify(c, name, want); err != nil {
		if rerr := b.pki.Revoke(ctx, c.Serial); rerr != nil {
			err = errors.Join(err, fmt.Errorf("vault: revoke the wrong certificate %s: %w", c.Serial, rerr))
		}
		return nil, err
	}
	return b.result(c), nil
}

// revokeLostExcept is revokeLost for a gateway that already holds a
// certificate: that one (and any other kept) stays valid.
func (b *Backend) revokeLostExcept(ctx context.Context, name string, since time.Time, keep func(string) bool) error {
	certs, err := b.pki.Issued(ctx, name, since.Add(-sweepMargin))
	if err != nil {
		return fmt.Errorf("vault: an earlier renewal's answer was lost, and listing what it may have issued failed: %w", err)
	}
	for _, c := range certs {
		if keep != nil && keep(c.Serial) {
			continue
		}
		if err := b.pki.Revoke(ctx, c.Serial); err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
			return fmt.Errorf("vault: revoke certificate %s left by a lost renewal: %w", c.Serial, err)
		}
	}
	return nil
}

// RevokeCert implements gatehouse.Renewer.
func (b *Backend) RevokeCert(ctx context.Context, serial string) error {
	return b.pki.Revoke(ctx, serial)
}
