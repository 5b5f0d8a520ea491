package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SharedQuota is a token bucket kept in the database, so every replica
// draws from one budget. Its shape (burst, refill) is the caller's, which
// every replica configures alike.
type SharedQuota struct {
	db    *DB
	name  string
	burst float64
	rate  float64 // tokens per microsecond
}

// Quota returns the shared bucket called name: at most burst calls at
// once, refilled at perSecond.
func (d *DB) Quota(name string, burst int, perSecond float64) *SharedQuota {
	return &SharedQuota{db: d, name: name, burst: float64(burst), rate: perSecond / 1e6}
}

// Wait takes a token, waiting for one if the bucket is empty, until ctx
// ends. Each try is one statement, so replicas racing for the last token
// cannot both have it.
func (q *SharedQuota) Wait(ctx context.Context) error {
	for {
		wait, err := q.take(ctx)
		if err != nil || wait == 0 {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// take takes a token and returns 0, or returns how long until one is due.
// A replica whose clock is behind the last writer's neither refills nor
// moves the bucket back in time.
func (q *SharedQuota) take(ctx context.Context) (time.Duration, error) {
	now := micros(q.db.Now())
	var left float64
	err := q.db.q.QueryRowContext(ctx, `INSERT INTO quota_buckets AS b (name, tokens, updated_at)
		VALUES (?, CAST(? AS DOUBLE PRECISION) - 1, ?)
		ON CONFLICT (name) DO UPDATE SET
			tokens = LEAST(CAST(? AS DOUBLE PRECISION), b.tokens + GREATEST(0, CAST(? AS BIGINT) - b.updated_at) * CAST(? AS DOUBLE PRECISION)) - 1,
			updated_at = GREATEST(b.updated_at, CAST(? AS BIGINT))
		WHERE LEAST(CAST(? AS DOUBLE PRECISION), b.tokens + GREATEST(0, CAST(? AS BIGINT) - b.updated_at) * CAST(? AS DOUBLE PRECISION)) >= 1
		RETURNING tokens`,
		q.name, q.burst, now, q.burst, now, q.rate, now, q.burst, now, q.rate).Scan(&left)
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: quota %s: %w", q.name, err)
	}
	var tokens float64
	var at int64
	if err := q.db.q.QueryRowContext(ctx, `SELECT tokens, updated_at FROM quota_buckets WHERE name = ?`, q.name).Scan(&tokens, &at); err != nil {
		return 0, fmt.Errorf("store: quota %s: %w", q.name, err)
	}
	have := min(q.burst, tokens+float64(max(0, now-at))*q.rate)
	return time.Duration((1-have)/q.rate)*time.Microsecond + time.Millisecond, nil
}
