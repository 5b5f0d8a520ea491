package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrSingleProcess is returned by Listen on SQLite, where one process owns
// the database and there is nobody else to hear from.
var ErrSingleProcess = errors.New("store: SQLite has a single process; there is nothing to listen to")

// ListenerApplication is the application_name of Listen's connections, so
// an operator (or a test) can find them in pg_stat_activity.
const ListenerApplication = "gatehouse-listener"

// Broadcast sends payload to every process listening on channel, with
// PostgreSQL's NOTIFY; a no-op on SQLite.
func (d *DB) Broadcast(ctx context.Context, channel, payload string) error {
	if !d.Postgres() {
		return nil
	}
	_, err := d.q.ExecContext(ctx, `SELECT pg_notify(?, ?)`, channel, payload)
	return translate(err, "notify")
}

// Listen calls onMessage with each payload sent on channel until ctx ends.
// It holds one connection of its own and, should that drop, reconnects with
// backoff; onConnect runs after each connection is listening, so a caller
// can make up for what it may have missed meanwhile. It returns ctx's error,
// or ErrSingleProcess on SQLite.
func (d *DB) Listen(ctx context.Context, channel string, onConnect func(), onMessage func(string)) error {
	e, ok := d.eng.(*postgresEngine)
	if !ok {
		return ErrSingleProcess
	}
	backoff := 50 * time.Millisecond
	for {
		err := e.listenOnce(ctx, channel, func() {
			backoff = 50 * time.Millisecond
			onConnect()
		}, onMessage)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.listenErr(err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listenErr keeps the last connection error for ListenError.
func (d *DB) listenErr(err error) {
	d.listenMu.Lock()
	d.lastListenErr = err
	d.listenMu.Unlock()
}

// ListenError is why Listen last lost its connection; nil if it never did.
func (d *DB) ListenError() error {
	d.listenMu.Lock()
	defer d.listenMu.Unlock()
	return d.lastListenErr
}

func (e *postgresEngine) listenOnce(ctx context.Context, channel string, onConnect func(), onMessage func(string)) error {
	cfg := e.db.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenerApplication
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("store: listener connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	onConnect()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("store: listener: %w", err)
		}
		onMessage(n.Payload)
	}
}
