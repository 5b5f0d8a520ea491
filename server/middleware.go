package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	signedKey
	infoKey // *reqInfo, for the access log
)

// operator wraps h so it runs only for a caller with at least role: an API
// token in the Authorization header, or a browser session cookie (whose
// changes must carry the CSRF token).
func (s *Server) operator(role gatehouse.Role, h handlerFunc) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		p, r, err := s.callerWith(r, role)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// callerWith authenticates r and checks the caller has at least role.
func (s *Server) callerWith(r *http.Request, role gatehouse.Role) (*gatehouse.Principal, *http.Request, error) {
	p, r, err := s.caller(r)
	if err != nil {
		return nil, r, err
	}
	if !p.Role.Allows(role) {
		return nil, r, gatehouse.Errorf(gatehouse.EFORBIDDEN, "%s %q has role %s; this needs %s", p.Kind, p.Name, p.Role, role)
	}
	return p, r, nil
}

// caller authenticates r and returns it with the caller as its origin.
func (s *Server) caller(r *http.Request) (*gatehouse.Principal, *http.Request, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		secret, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || strings.TrimSpace(secret) == "" {
			return nil, r, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "malformed Authorization header: send 'Authorization: Bearer <token>'")
		}
		p, err := s.svc.Authenticate(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			return nil, r, err
		}
		return p, setActor(r, p.Actor()), nil
	}
	if _, err := r.Cookie(sessionCookie); err != nil {
		return nil, r, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "not logged in: log in on the page, or send 'Authorization: Bearer <token>'")
	}
	ss, err := s.session(r)
	if err != nil {
		return nil, r, err
	}
	r = setActor(r, ss.Principal.Actor())
	if err := checkCSRF(r, ss); err != nil {
		return nil, r, err
	}
	return &ss.Principal, r, nil
}

// principalFrom returns whom an operator request acts as.
func principalFrom(ctx context.Context) *gatehouse.Principal {
	p, _ := ctx.Value(principalKey).(*gatehouse.Principal)
	return p
}

// actor names who made a decision, for the audit log.
func actor(ctx context.Context) string {
	if a := gatehouse.OriginOf(ctx).Actor; a != "" {
		return a
	}
	return "unknown"
}

// device wraps h so it runs only for a correctly signed device request. The
// body is read (bounded) before verifying, since the signature covers it.
// The source's rate limit is checked first of all, so a flood is refused for
// the price of a map lookup: no body read, no public-key operation, no
// database.
func (s *Server) device(h func(http.ResponseWriter, *http.Request, *protocol.Signed, []byte) error) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.devLimit.check(r, "device requests"); err != nil {
			return err
		}
		body, err := readBody(w, r)
		if err != nil {
			return err
		}
		sig, release, err := s.admitDevice(w, r, body)
		if err != nil {
			return err
		}
		defer release()
		r = setActor(r, "device:"+sig.Fingerprint)
		return h(w, r, sig, body)
	})
}

// maxDeviceQueue bounds the device requests waiting for the database: for
// a slot, or, for a wait, for its nonce's commit (see admitDevice). A
// fleet whose requests come faster than the database answers them would
// otherwise queue without end, each holding a connection (a descriptor) and
// its memory: on the way to 50,000 waiting gateways in BenchmarkWaitingFleet
// on a loaded 2-core machine, 4,000 waited and the process ran out of
// descriptors, so it could accept nothing, the operator's approvals
// included. Past the bound a device is told to come back after the pace
// the turned-away waiters get, which is what makes the load shrink.
const maxDeviceQueue = 256

// admitDevice verifies a device request and uses its nonce, holding a
// database slot (deviceSlot) for the nonce and for what the request does
// next until release. The signature
// is checked before the slot is taken: it is public-key work that needs
// no database, and with it inside the slots BenchmarkCheckins' requests
// queued for them while the four holders shared two cores with every
// other request.
//
// A wait takes no slot: its one use of the writer is its nonce, and
// concurrent nonces share one commit (store.UseNonce), so however many
// waits arrive the writer sees one batch of them at a time; the slot
// would only have capped each batch at four, and so multiplied the
// commits. Its status is read on connections of its own
// (store.DB.Checkin). It is still counted in the queue until its nonce is
// in, so the bound holds for waits as well.
func (s *Server) admitDevice(w http.ResponseWriter, r *http.Request, body []byte) (*protocol.Signed, func(), error) {
	leave, err := s.enterDeviceQueue(w)
	if err != nil {
		return nil, nil, err
	}
	defer leave()
	chk, err := s.checkDevice(r, body)
	if err != nil {
		return nil, nil, err
	}
	release := func() {}
	if r.URL.Path != protocol.PathWait {
		if release, err = s.deviceSlot(r.Context()); err != nil {
			return nil, nil, err
		}
	}
	sig, err := chk.UseNonce(r.Context())
	if err != nil {
		release()
		return nil, nil, err
	}
	return sig, release, nil
}

// enterDeviceQueue counts a device request as waiting for the database
// until leave, refusing it at once, before any public-key work, while
// maxDeviceQueue requests already wait. A refusal closes the connection,
// as for a turned-away wait.
func (s *Server) enterDeviceQueue(w http.ResponseWriter) (leave func(), err error) {
	if s.devQueued.Add(1) > maxDeviceQueue {
		s.devQueued.Add(-1)
		w.Header().Set("Connection", "close")
		return nil, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "the server is busy; ask again later").WithRetryAfter(s.svc.PollAfter())
	}
	return func() { s.devQueued.Add(-1) }, nil
}

// checkDevice checks a request signed with the device key, or one signed
// with a session, which may only wait; its nonce is not used yet.
func (s *Server) checkDevice(r *http.Request, body []byte) (*protocol.Checked, error) {
	if !protocol.HasSession(r) {
		return s.verifier.Check(r, body)
	}
	if r.URL.Path != protocol.PathWait {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "a session may only wait; sign this request with the device key")
	}
	return s.verifier.CheckSession(r, body)
}

// grantSession gives the answer to a key-signed request a fresh session,
// so the gateway's next waits need no public-key signature.
func (s *Server) grantSession(sig *protocol.Signed, st *protocol.Status) {
	if sig.ViaSession || s.verifier.Sessions == nil {
		return
	}
	if g, err := s.verifier.Sessions.Grant(sig.Fingerprint, time.Now()); err == nil {
		st.Session = g
	}
}

func isDevicePath(p string) bool { return strings.HasPrefix(p, "/device/") }

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, gatehouse.Errorf(gatehouse.ETOOLARGE, "request body exceeds %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "could not read request body")
	}
	return body, nil
}

// decodeJSON reads exactly one JSON object into v, refusing unknown fields so
// a typo is an error rather than silently ignored.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: %s", jsonProblem(err))
	}
	// Only the end of the body may follow: More alone let a stray '}' or
	// ']' after the object through.
	if _, err := dec.Token(); err != io.EOF {
		return gatehouse.Errorf(gatehouse.EINVALID, "invalid JSON body: trailing data")
	}
	return nil
}

// jsonProblem describes a decode error without echoing the body back.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error"
	case errors.As(err, &typ):
		return "field " + typ.Field + " has the wrong type"
	case errors.Is(err, io.EOF):
		return "empty body"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "malformed"
}

// remoteAddr is the peer's IP. Behind a proxy this is the proxy; trusting
// forwarded headers is a deployment choice not made here.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
