package provision

import (
	"context"
	"fmt"
	"time"

	"gatehouse/protocol"
)

// The Service is the device request verifier's memory of nonces.
var _ protocol.NonceStore = (*Service)(nil)

// UseNonce records a request nonce in the database, so a captured request is
// refused as a replay after a restart and by every process sharing the
// database. It returns an error wrapping protocol.ErrReplay on a second use.
//
// No in-memory cache sits in front: every fresh nonce must reach the database
// anyway, so a cache would only save work for replays, and a cache that
// answered "fresh" on its own would reopen the hole across processes.
func (s *Service) UseNonce(ctx context.Context, fingerprint, nonce string, expires time.Time) error {
	fresh, err := s.db.UseNonce(ctx, fingerprint, nonce, expires)
	if err != nil {
		return err
	}
	if !fresh {
		return fmt.Errorf("nonce store: %w", protocol.ErrReplay)
	}
	return nil
}

// PruneNonces deletes expired nonces in batches and returns how many went.
func (s *Service) PruneNonces(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := s.db.DeleteExpiredNonces(ctx, pruneBatch)
		total += n
		if err != nil || n < pruneBatch {
			return total, err
		}
	}
}
