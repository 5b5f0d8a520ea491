package store

import (
	"context"
	"strings"

	"gatehouse"
)

// Seed is one device for SeedPending: the device and the key it enrolled
// with. The device's State and times are set by SeedPending; an empty
// VerificationCode is filled in when the provision service next starts.
type Seed struct {
	Device gatehouse.Device
	Key    gatehouse.DeviceKey
}

// seedBatch is how many rows one seeding INSERT carries: a hundredth of the
// statements to run, well within SQLite's limit on bound parameters.
const seedBatch = 100

// SeedPending inserts pending devices and their keys in one transaction,
// in statements of many rows each: the rows enrollments would
// leave (bar the timeline, which is provision's business), thousands a
// second. It is for tests and benchmarks that need a large fleet; gatehouse
// itself enrolls devices through the provision package. Every row is
// stamped with the transaction's time, and seeds[i].Device gets the state
// and times that were stored. A taken id or fingerprint is ErrUnique, and
// then nothing is kept.
func (d *DB) SeedPending(ctx context.Context, seeds []Seed) error {
	return d.InTx(ctx, func(tx *Tx) error {
		for len(seeds) > 0 {
			n := min(len(seeds), seedBatch)
			if err := tx.insertSeeds(ctx, seeds[:n]); err != nil {
				return err
			}
			seeds = seeds[n:]
		}
		return nil
	})
}

// insertSeeds writes seeds in one statement for the devices and one for
// their keys. Batches of a fixed size share the statements' text, which
// the drivers keep prepared.
func (tx *Tx) insertSeeds(ctx context.Context, seeds []Seed) error {
	n := len(seeds)
	devRows := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", n), ", ")
	keyRows := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", n), ", ")
	at := micros(tx.now)
	devices, keys := make([]any, 0, 9*n), make([]any, 0, 8*n)
	for i := range seeds {
		dev, k := &seeds[i].Device, &seeds[i].Key
		dev.State = gatehouse.StatePending
		dev.FirstSeen, dev.LastSeen, dev.UpdatedAt = tx.now, tx.now, tx.now
		devices = append(devices, dev.ID, dev.State, dev.MAC, dev.Fingerprint, dev.VerificationCode, dev.SourceAddr, at, at, at)
		keys = append(keys, k.Fingerprint, dev.ID, k.KeyType, k.PublicKey, k.SealKey, k.CSR, dev.MAC, at)
	}
	if _, err := tx.q.ExecContext(ctx, `INSERT INTO devices
		(id, state, mac, fingerprint, verification_code, source_addr, first_seen, last_seen, updated_at) VALUES `+devRows, devices...); err != nil {
		return translate(err, "device")
	}
	_, err := tx.q.ExecContext(ctx, `INSERT INTO device_keys
		(fingerprint, device_id, key_type, public_key, seal_key, csr, mac, created_at) VALUES `+keyRows, keys...)
	return translate(err, "device key")
}
