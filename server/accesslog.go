package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// requestIDHeader carries the request id in and out, so a client's report
// and the server's log line can be matched.
const requestIDHeader = "X-Request-Id"

// authWarnEvery bounds the warn lines about refused credentials to one per
// source in this window, so a password-guessing flood cannot flood the log.
const authWarnEvery = time.Minute

// reqInfo is filled in by the handlers for the access log line: derived
// contexts do not flow back out, a shared pointer does.
type reqInfo struct {
	actor, id, source string
	// refusal is the error a 401 or 403 answered with, for the audit log.
	refusal error
}

// setActor records who made the request: "token:NAME", "user:NAME" or
// "device:FINGERPRINT". Never a secret. It returns r with that origin in its
// context, for the audit log.
func setActor(r *http.Request, actor string) *http.Request {
	info, ok := r.Context().Value(infoKey).(*reqInfo)
	if !ok {
		info = &reqInfo{source: remoteAddr(r)}
	}
	info.actor = actor
	return r.WithContext(gatehouse.WithOrigin(r.Context(), info.origin()))
}

func (i *reqInfo) origin() gatehouse.Origin {
	return gatehouse.Origin{Actor: i.actor, Source: i.source, RequestID: i.id}
}

// accessLog writes one line per request. It logs the route pattern, not
// the path or query, so neither ids nor anything a client put in a URL end
// up in the log; headers are never logged.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, id := time.Now(), requestID(r)
		w.Header().Set(requestIDHeader, id)
		info := &reqInfo{id: id, source: remoteAddr(r)}
		ctx := context.WithValue(r.Context(), infoKey, info)
		r = r.WithContext(gatehouse.WithOrigin(ctx, info.origin()))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.logRequest(r, info, sw.status(), start)
	})
}

// logRequest is the end of accessLog, apart so that its frame (the log
// line's attributes) is not on the stack of a held long poll: a parked
// wait's stack must stay under a quarter of 16 KiB for the collector to
// halve it.
func (s *Server) logRequest(r *http.Request, info *reqInfo, status int, start time.Time) {
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.auditRefusal(r, info, status, route)
	s.Metrics.ObserveHTTP(route, status, time.Since(start))
	if s.Logger == nil {
		return
	}
	// Enabled is asked here, not only inside LogAttrs: the attributes are
	// built before the call, and most lines (a fleet's re-polls) are at
	// debug, which a server seldom logs.
	if level := requestLevel(route, status); s.Logger.Enabled(r.Context(), level) {
		s.Logger.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method), slog.String("route", route), slog.Int("status", status),
			slog.Duration("duration", time.Since(start)), slog.String("actor", info.actor),
			slog.String("request_id", info.id), slog.String("source", remoteAddr(r)))
	}
	if status == http.StatusUnauthorized {
		s.authWarn.refused(s.Logger, remoteAddr(r), route, info.id)
	}
}

// waitRoute is the pattern of a device's wait, as r.Pattern names it.
const waitRoute = "POST " + protocol.PathWait

// requestLevel is the access log's level for a request: a wait that
// answered 200 is logged at debug. Every waiting gateway asks again and
// again (a fleet of 100,000 makes tens of millions of such lines a day, and
// writing each was a tenth of a wait's cost), and /metrics counts them by
// status; a refused or failed wait, and every other request, stays at info.
func requestLevel(route string, status int) slog.Level {
	if route == waitRoute && status == http.StatusOK {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// auditRefusal puts refused credentials (401) and refused roles or CSRF
// checks (403) in the audit log; the service rate-limits them per source.
// A 401 counts only when credentials were offered: a page asking whether it
// is logged in, or a probe with none, refused nothing.
func (s *Server) auditRefusal(r *http.Request, info *reqInfo, status int, route string) {
	refused := status == http.StatusUnauthorized && offeredCredentials(r)
	if !refused && status != http.StatusForbidden {
		return // most requests: nothing to audit, so no contexts to build
	}
	ctx := context.WithoutCancel(gatehouse.WithOrigin(r.Context(), info.origin()))
	var err error
	if refused {
		err = s.svc.AuditRefusedCredentials(ctx, route)
	} else {
		err = s.svc.AuditAccessDenied(ctx, route, info.refusal)
	}
	if err != nil && s.Logger != nil {
		s.Logger.Error("audit: could not record a refusal", "route", route, "request_id", info.id, "err", err)
	}
}

func offeredCredentials(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" || isDevicePath(r.URL.Path) || r.Pattern == "POST /api/v1/session" {
		return true
	}
	_, err := r.Cookie(sessionCookie)
	return err == nil
}

// requestID keeps a caller's id when it is short and plain (it goes into
// logs and headers), else makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(requestIDHeader); id != "" && len(id) <= 64 && plainID(id) {
		return id
	}
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func plainID(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusWriter remembers the status. Unwrap lets http.ResponseController
// (the event stream's Flush, deadlines) reach the real writer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// authLimiter rate-limits the warn lines about refused credentials (bad
// tokens, failed logins, bad device signatures) per source address.
type authLimiter struct {
	mu      sync.Mutex
	now     func() time.Time
	sources map[string]*authWindow
}

type authWindow struct {
	start      time.Time
	suppressed int
}

// refused logs the first refusal from source in each window; the next line
// after the window says how many were left out meanwhile.
func (l *authLimiter) refused(log *slog.Logger, source, route, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.sources[source]
	if w != nil && now.Sub(w.start) < authWarnEvery {
		w.suppressed++
		return
	}
	suppressed := 0
	if w != nil {
		suppressed = w.suppressed
	}
	l.prune(now)
	l.sources[source] = &authWindow{start: now}
	log.Warn("credentials refused", "source", source, "route", route, "request_id", id,
		"suppressed_since_last", suppressed)
}

// prune drops expired windows, so many sources cannot grow the map without
// bound. Their suppressed counts are lost, which only shortens a log line.
func (l *authLimiter) prune(now time.Time) {
	if len(l.sources) < 1024 {
		return
	}
	for src, w := range l.sources {
		if now.Sub(w.start) >= authWarnEvery {
			delete(l.sources, src)
		}
	}
}
