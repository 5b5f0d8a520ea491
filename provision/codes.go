package provision

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/store"
)

// Names of the server secrets: verification codes are keyed with one,
// device sessions with the other, so neither use can learn the other's key.
const (
	codeSecretName    = "verification_code"
	sessionSecretName = "device_session"
)

// loadServerSecret reads the named server secret, making it on the first
// start; every replica on the database then shares it. New takes no
// context, and this runs once against the local database, so a bounded
// background context stands in.
func loadServerSecret(db *store.DB, name string) ([]byte, error) {
	fresh := make([]byte, protocol.ServerSecretSize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("provision: generate %s secret: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secret, err := db.ServerSecret(ctx, name, fresh)
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	if len(secret) != protocol.ServerSecretSize {
		return nil, fmt.Errorf("provision: stored %s secret has %d bytes, want %d", name, len(secret), protocol.ServerSecretSize)
	}
	return secret, nil
}

// code is a key's verification code; see protocol.VerificationCode for why
// only the server can compute it.
func (s *Service) code(fingerprint string) string {
	return protocol.VerificationCode(s.secret, fingerprint)
}

// backfillBatch is how many devices one transaction gives codes to, so a
// large upgrade never holds the write lock for long.
const backfillBatch = 500

// backfillCodes stores the codes of devices that have none (enrolled before
// codes were stored), so duplicate codes among them are found too.
func (s *Service) backfillCodes(ctx context.Context) error {
	for {
		var n int
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			us, err := tx.UncodedDevices(ctx, backfillBatch)
			for _, u := range us {
				if err == nil {
					err = tx.SetVerificationCode(ctx, u.ID, s.code(u.Fingerprint))
				}
			}
			n = len(us)
			return err
		})
		if err != nil || n < backfillBatch {
			return err
		}
	}
}

// maxPeers bounds how many other devices a flag names: enough to find them,
// bounded however many a flood enrolls.
const maxPeers = 10

// flagDuplicates marks the pending devices among ds that share their MAC or
// their code with other pending devices. A copied MAC costs nothing, and a
// shared code may be an attacker's try at the real gateway's, so either way
// the operator has to tell the two apart before approving one.
func flagDuplicates(ctx context.Context, tx *store.Tx, ds []*gatehouse.Device) error {
	var pending []*gatehouse.Device
	var macs, codes []string
	for _, d := range ds {
		if d.State == gatehouse.StatePending {
			pending = append(pending, d)
			macs, codes = append(macs, d.MAC), append(codes, d.VerificationCode)
		}
	}
	byMAC, err := tx.PendingPeers(ctx, store.PeerMAC, macs, maxPeers+1)
	if err != nil {
		return err
	}
	byCode, err := tx.PendingPeers(ctx, store.PeerCode, codes, maxPeers+1)
	if err != nil {
		return err
	}
	for _, d := range pending {
		d.SameMAC = others(byMAC[d.MAC], d.ID)
		d.SameCode = others(byCode[d.VerificationCode], d.ID)
	}
	return flagRekeys(ctx, tx, ds)
}

// others is ids without self, at most maxPeers of them.
func others(ids []string, self string) []string {
	var out []string
	for _, id := range ids {
		if id != self && len(out) < maxPeers {
			out = append(out, id)
		}
	}
	return out
}
