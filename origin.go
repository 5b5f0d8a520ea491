package gatehouse

import (
	"context"
	"log/slog"
)

// Origin says who asked for something and from where: what the audit log
// records beside each decision. It is never a secret: actors are names or
// key fingerprints, sources are addresses.
type Origin struct {
	// Actor is "user:NAME", "token:NAME", "device:FINGERPRINT", or for work
	// done on the database directly, "local:COMMAND".
	Actor string `json:"actor"`
	// Source is the client's address as the server saw it.
	Source string `json:"source,omitempty"`
	// RequestID matches the access log line of the request.
	RequestID string `json:"request_id,omitempty"`
}

type originKey struct{}

// WithOrigin returns ctx carrying o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginOf returns the origin ctx carries; the zero Origin if none.
func OriginOf(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// OriginLogs wraps h so a line logged with a context carrying an Origin
// (the *Context methods of slog.Logger) carries its request_id, as the
// server's access log line does: a handler's or the service's line can
// then be matched to its request. Wrapping twice adds it once.
func OriginLogs(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := OriginOf(ctx).RequestID; id != "" && !hasAttr(r, "request_id") {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// hasAttr says whether r already names key, as the access log line does.
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
