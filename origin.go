package gatehouse

import "context"

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
