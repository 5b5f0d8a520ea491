package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"gatehouse"
	"gatehouse/store"
)

// renewRevokeArgs is the durable revocation of one certificate a renewal
// replaced (or one nobody will confirm).
type renewRevokeArgs struct {
	DeviceID string `json:"device_id" river:"unique"`
	Serial   string `json:"serial" river:"unique"`
}

// Kind is stored with every job; never rename it.
func (renewRevokeArgs) Kind() string { return "renewal_revoke" }

// InsertOpts makes a second enqueue of the same revocation a no-op.
func (renewRevokeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type renewRevokeWorker struct {
	river.WorkerDefaults[renewRevokeArgs]
	svc *Service
}

func (w *renewRevokeWorker) Work(ctx context.Context, job *river.Job[renewRevokeArgs]) error {
	return w.svc.revokeReplaced(ctx, job.Args.DeviceID, job.Args.Serial)
}

// revokeLater enqueues the revocation in the caller's transaction, so it
// is committed with the change that calls for it.
func (s *Service) revokeLater(ctx context.Context, tx *store.Tx, id, serial string) error {
	if _, err := tx.Enqueue(ctx, renewRevokeArgs{DeviceID: id, Serial: serial}, nil); err != nil {
		return fmt.Errorf("provision: enqueue revocation of %s: %w", serial, err)
	}
	return nil
}

// revokeReplaced revokes a certificate in the PKI, then marks it revoked
// and puts that on the timeline once. Revoking again is harmless, and a
// certificate the PKI no longer holds counts as revoked.
func (s *Service) revokeReplaced(ctx context.Context, id, serial string) error {
	r := s.renewer()
	if r == nil {
		return fmt.Errorf("revoke certificate %s: this server has no PKI backend any more", serial)
	}
	if err := r.RevokeCert(ctx, serial); err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
		s.log.Warn("revoking a replaced certificate failed", "device", id, "serial", serial, "err", err)
		return err
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		certs, err := tx.Certificates(ctx, id)
		if err != nil {
			return err
		}
		for _, c := range certs {
			if c.Serial != serial || c.RevokedAt != nil {
				continue
			}
			if err := tx.MarkCertRevoked(ctx, serial); err != nil {
				return err
			}
			return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "certificate_revoked", Detail: "serial " + serial + ", replaced by a renewal"})
		}
		return nil
	})
	if err == nil {
		s.notify.Publish(id)
	}
	return err
}
