package provision

import (
	"context"
	"log/slog"
)

// InfoAsDebug wraps h so that info lines are logged at debug, warnings and
// errors as they are. The job queue (River) logs its own bookkeeping at
// info: client started and stopped, job counts every few seconds, "Job
// errored; retrying" beside gatehouse's own "provisioning step failed". On a
// console that is half the lines, so they move to --log-level debug; its
// warnings and errors stay, as they mean the queue itself is in trouble
// (its database unreachable, a job stuck). The demo does the same for its
// simulated gateways' agents, whose lines repeat what the server logs.
func InfoAsDebug(h slog.Handler) slog.Handler {
	if _, ok := h.(infoAsDebug); ok {
		return h
	}
	return infoAsDebug{h}
}

type infoAsDebug struct{ slog.Handler }

// lower is the level a record of level l is logged at.
func lower(l slog.Level) slog.Level {
	if l > slog.LevelDebug && l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}

func (h infoAsDebug) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, lower(l))
}

func (h infoAsDebug) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lower(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h infoAsDebug) WithAttrs(as []slog.Attr) slog.Handler {
	return infoAsDebug{h.Handler.WithAttrs(as)}
}

func (h infoAsDebug) WithGroup(name string) slog.Handler {
	return infoAsDebug{h.Handler.WithGroup(name)}
}
