package provision

import (
	"context"
	"time"

	"gatehouse"
	"gatehouse/store"
)

// maxExpiring bounds the fleet view of expiring certificates.
const maxExpiring = 1000

// ExpiringCert is a certificate about to expire, with the gateway it is for.
type ExpiringCert struct {
	gatehouse.DeviceCert
	Name  string          `json:"name"`
	State gatehouse.State `json:"state"`
}

// Certificates lists the certificates gatehouse keeps for a device, newest
// first: the provisioning one and each renewal, revoked ones included.
func (s *Service) Certificates(ctx context.Context, id string) ([]gatehouse.DeviceCert, error) {
	var out []gatehouse.DeviceCert
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Device(ctx, id); err != nil {
			return err
		}
		var err error
		out, err = tx.Certificates(ctx, id)
		return err
	})
	return nonNilCerts(out), err
}

// CertsExpiring lists the certificates not revoked that expire within the
// given time from now (expired ones included), soonest first.
func (s *Service) CertsExpiring(ctx context.Context, within time.Duration) ([]ExpiringCert, error) {
	if within <= 0 {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "expiring_within must be positive")
	}
	out := []ExpiringCert{}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		certs, err := tx.CertsExpiring(ctx, tx.Now().Add(within), maxExpiring)
		if err != nil {
			return err
		}
		names := map[string]*gatehouse.Device{}
		for _, c := range certs {
			d, ok := names[c.DeviceID]
			if !ok {
				if d, err = tx.Device(ctx, c.DeviceID); err != nil {
					return err
				}
				names[c.DeviceID] = d
			}
			out = append(out, ExpiringCert{DeviceCert: c, Name: d.Name, State: d.State})
		}
		return nil
	})
	return out, err
}

func nonNilCerts(c []gatehouse.DeviceCert) []gatehouse.DeviceCert {
	if c == nil {
		return []gatehouse.DeviceCert{}
	}
	return c
}
