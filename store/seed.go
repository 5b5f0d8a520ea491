package store

import (
	"context"
	"fmt"

	"gatehouse"
)

// Seed is one device for SeedPending: the device and the key it enrolled
// with. The device's State and times are set by SeedPending.
type Seed struct {
	Device gatehouse.Device
	Key    gatehouse.DeviceKey
}

// SeedPending inserts pending devices and their keys in one transaction,
// with one prepared statement per table: the rows enrollments would leave
// (bar the timeline, which is provision's business), thousands a second.
// It is for tests and benchmarks that need a large fleet; gatehouse itself
// enrolls devices through the provision package. Every row is stamped with
// the transaction's time, and seeds[i].Device gets the state and times that
// were stored. A taken id or fingerprint is ErrUnique, and nothing is kept.
func (d *DB) SeedPending(ctx context.Context, seeds []Seed) error {
	return d.InTx(ctx, func(tx *Tx) error {
		devices, err := tx.tx.PrepareContext(ctx, `INSERT INTO devices
			(id, state, mac, fingerprint, source_addr, first_seen, last_seen, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("store: prepare device insert: %w", err)
		}
		defer devices.Close()
		keys, err := tx.tx.PrepareContext(ctx, `INSERT INTO device_keys
			(fingerprint, device_id, key_type, public_key, seal_key, csr, mac, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("store: prepare device key insert: %w", err)
		}
		defer keys.Close()
		now := micros(tx.now)
		for i := range seeds {
			dev, k := &seeds[i].Device, &seeds[i].Key
			dev.State = gatehouse.StatePending
			dev.FirstSeen, dev.LastSeen, dev.UpdatedAt = tx.now, tx.now, tx.now
			if _, err := devices.ExecContext(ctx, dev.ID, dev.State, dev.MAC, dev.Fingerprint, dev.SourceAddr,
				now, now, now); err != nil {
				return translate(err, "device")
			}
			if _, err := keys.ExecContext(ctx, k.Fingerprint, dev.ID, k.KeyType, k.PublicKey, k.SealKey, k.CSR,
				dev.MAC, now); err != nil {
				return translate(err, "device key")
			}
		}
		return nil
	})
}
