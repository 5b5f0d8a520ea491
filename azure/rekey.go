package azure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"gatehouse"
	"gatehouse/protocol"
)

var _ gatehouse.Rekeyer = (*DPSBackend)(nil)

// recReplacedKey records, before the keys are rotated, a digest of the
// primary key being replaced. A rerun whose PUT answer was lost compares it
// with what DPS holds: a different key means the rotation took effect.
// It is a one-way digest of a 256-bit random key, never the key.
const recReplacedKey = "dps_replaced_key_sha256"

// Rekey gives the gateway's enrollment new symmetric keys: the same
// enrollment (registration id, device id, IoT Edge), replaced with the
// etag it was read with, so a concurrent change is a 412 and a retry
// rather than lost. The old keys stop working at once; the gateway
// registers again with the new ones, and DPS updates its hub identity.
func (b *DPSBackend) Rekey(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	name := in.Device.Name
	e, err := b.api.GetEnrollment(ctx, name)
	if errors.Is(err, gatehouse.ErrBackendNotFound) {
		return b.Provision(ctx, in) // nothing to rotate: enroll afresh
	}
	if err != nil {
		return nil, err
	}
	if e.PrimaryKey == "" {
		return nil, fmt.Errorf("dps: enrollment %q came back without its keys; retrying", name)
	}
	replaced := in.Recorded[recReplacedKey]
	if replaced == "" {
		replaced = keyDigest(e.PrimaryKey)
		if err := in.Record(ctx, map[string]string{recReplacedKey: replaced}); err != nil {
			return nil, err
		}
	}
	if keyDigest(e.PrimaryKey) == replaced {
		if e, err = b.rotate(ctx, e); err != nil {
			return nil, err
		}
	}
	return b.keysResult(e), nil
}

// rotate replaces the enrollment's keys, only in the version it was read
// in (If-Match).
func (b *DPSBackend) rotate(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	next := e
	next.PrimaryKey, next.SecondaryKey = newSymmetricKey(), newSymmetricKey()
	stored, err := b.api.CreateEnrollment(ctx, next)
	if err != nil {
		return gatehouse.Enrollment{}, fmt.Errorf("dps: rotate the keys of enrollment %q: %w", e.RegistrationID, err)
	}
	if stored.RegistrationID != e.RegistrationID || stored.PrimaryKey != next.PrimaryKey {
		return gatehouse.Enrollment{}, fmt.Errorf("dps: enrollment %q did not take the new keys; retrying", e.RegistrationID)
	}
	return stored, nil
}

func (b *DPSBackend) keysResult(e gatehouse.Enrollment) *gatehouse.StepResult {
	return &gatehouse.StepResult{
		Output:  map[string]string{gatehouse.OutDPSIDScope: b.api.IDScope(), gatehouse.OutDPSRegistrationID: e.RegistrationID},
		Secrets: map[string][]byte{protocol.FieldDPSPrimaryKey: []byte(e.PrimaryKey)},
	}
}

// keyDigest is a short one-way digest of a symmetric key, to recognise it
// without keeping it.
func keyDigest(key string) string {
	sum := sha256.Sum256([]byte("gatehouse dps key\x00" + key))
	return hex.EncodeToString(sum[:16])
}
