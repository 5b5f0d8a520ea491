package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

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
// with prepared statements of many rows each: the rows enrollments would
// leave (bar the timeline, which is provision's business), thousands a
// second. It is for tests and benchmarks that need a large fleet; gatehouse
// itself enrolls devices through the provision package. Every row is
// stamped with the transaction's time, and seeds[i].Device gets the state
// and times that were stored. A taken id or fingerprint is ErrUnique, and
// then nothing is kept.
func (d *DB) SeedPending(ctx context.Context, seeds []Seed) error {
	return d.InTx(ctx, func(tx *Tx) error {
		full, err := tx.prepareSeed(ctx, seedBatch)
		if err != nil {
			return err
		}
		defer full.close()
		for len(seeds) > 0 {
			n := min(len(seeds), seedBatch)
			stmts := full
			if n < seedBatch {
				if stmts, err = tx.prepareSeed(ctx, n); err != nil {
					return err
				}
				defer stmts.close()
			}
			if err := stmts.insert(ctx, tx.now, seeds[:n]); err != nil {
				return err
			}
			seeds = seeds[n:]
		}
		return nil
	})
}

// seedStmts insert a fixed number of devices, then their keys.
type seedStmts struct{ devices, keys *sql.Stmt }

func (tx *Tx) prepareSeed(ctx context.Context, n int) (*seedStmts, error) {
	rows := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", n), ", ")
	devRows := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?), ", n), ", ")
	devices, err := tx.tx.PrepareContext(ctx, `INSERT INTO devices
		(id, state, mac, fingerprint, verification_code, source_addr, first_seen, last_seen, updated_at) VALUES `+devRows)
	if err != nil {
		return nil, fmt.Errorf("store: prepare device insert: %w", err)
	}
	keys, err := tx.tx.PrepareContext(ctx, `INSERT INTO device_keys
		(fingerprint, device_id, key_type, public_key, seal_key, csr, mac, created_at) VALUES `+rows)
	if err != nil {
		devices.Close()
		return nil, fmt.Errorf("store: prepare device key insert: %w", err)
	}
	return &seedStmts{devices: devices, keys: keys}, nil
}

func (s *seedStmts) close() {
	s.devices.Close()
	s.keys.Close()
}

// insert writes seeds, as many as the statements were prepared for.
func (s *seedStmts) insert(ctx context.Context, now time.Time, seeds []Seed) error {
	at := micros(now)
	devices, keys := make([]any, 0, 9*len(seeds)), make([]any, 0, 8*len(seeds))
	for i := range seeds {
		dev, k := &seeds[i].Device, &seeds[i].Key
		dev.State = gatehouse.StatePending
		dev.FirstSeen, dev.LastSeen, dev.UpdatedAt = now, now, now
		devices = append(devices, dev.ID, dev.State, dev.MAC, dev.Fingerprint, dev.VerificationCode, dev.SourceAddr, at, at, at)
		keys = append(keys, k.Fingerprint, dev.ID, k.KeyType, k.PublicKey, k.SealKey, k.CSR, dev.MAC, at)
	}
	if _, err := s.devices.ExecContext(ctx, devices...); err != nil {
		return translate(err, "device")
	}
	_, err := s.keys.ExecContext(ctx, keys...)
	return translate(err, "device key")
}
