package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The queries here are read at every metrics scrape and readiness probe.
// They read through the pool rather than InTx, whose transactions take
// SQLite's write lock (and on PostgreSQL the writers' lock), and they are plain SQL without parameters, so they
// read the same on SQLite and PostgreSQL.

// CountDevicesByState returns how many devices are in each state; states
// no device is in are absent.
func (d *DB) CountDevicesByState(ctx context.Context) (map[string]int, error) {
	rows, err := d.q.QueryContext(ctx, `SELECT state, COUNT(*) FROM devices GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("store: count devices by state: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("store: count devices by state: %w", err)
		}
		out[state] = n
	}
	return out, rows.Err()
}

// JobCount is how many jobs of one queue are in one state.
type JobCount struct {
	Queue, State string
	Count        int
}

// WaitingJobStates are the job states CountJobs reports: work not yet
// done. Completed, cancelled and discarded jobs are history, not depth.
var WaitingJobStates = []string{"available", "scheduled", "retryable", "running"}

// CountJobs returns the job queue's depth by queue and state, for the
// states in WaitingJobStates; combinations without jobs are absent.
func (d *DB) CountJobs(ctx context.Context) ([]JobCount, error) {
	in := "'" + strings.Join(WaitingJobStates, "', '") + "'"
	rows, err := d.q.QueryContext(ctx, `SELECT queue, state, COUNT(*) FROM river_job
		WHERE state IN (`+in+`) GROUP BY queue, state ORDER BY queue, state`)
	if err != nil {
		return nil, fmt.Errorf("store: count jobs: %w", err)
	}
	defer rows.Close()
	var out []JobCount
	for rows.Next() {
		var c JobCount
		if err := rows.Scan(&c.Queue, &c.State, &c.Count); err != nil {
			return nil, fmt.Errorf("store: count jobs: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ErrSchemaBehind reports a database that lacks migrations this binary
// knows: they are running, or another replica has not run them yet.
var ErrSchemaBehind = errors.New("store: database schema is behind this gatehouse")

// Ready says whether the database answers, its schema is current
// (SchemaCurrent) and it takes writes (Writable).
func (d *DB) Ready(ctx context.Context) error {
	if err := d.Ping(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if err := d.SchemaCurrent(ctx); err != nil {
		return err
	}
	return d.Writable(ctx)
}

// SchemaCurrent says whether the database holds every migration this
// binary knows (ErrSchemaBehind if not). Every migration is checked, not
// only the highest, since migrate may apply a lower number after a higher
// one. A newer schema passes: during a rolling upgrade the replicas still
// on the old binary go on serving what its migrations built.
func (d *DB) SchemaCurrent(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles, d.eng.migrations())
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	if v, err := d.SchemaVersionIfAny(ctx); err != nil || v == 0 {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: no migrations applied, this gatehouse needs %d", ErrSchemaBehind, latest)
	}
	applied, err := d.appliedVersions(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, m := range ms {
		if !applied[m.version] {
			missing = append(missing, fmt.Sprint(m.version))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: migrations %s of %d not applied", ErrSchemaBehind, strings.Join(missing, ", "), latest)
	}
	return nil
}
