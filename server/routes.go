package server

import (
	"net/http"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/ui"
)

// Handler returns every route of the server; the whole surface is here.
func (s *Server) Handler() http.Handler {
	s.devLimit = newSourceLimiter(s.DeviceRate, s.DeviceBurst, time.Now, s.warn)
	s.devSlots = make(chan struct{}, deviceSlots)
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.handle(s.handleHealth))
	mux.Handle("GET /readyz", s.handle(s.handleReady))
	mux.Handle("GET /api/openapi.json", s.handle(s.handleOpenAPI))
	mux.Handle("GET /{$}", ui.Handler())
	mux.Handle("GET /assets/", ui.Handler())

	mux.Handle("POST /api/v1/session", s.handle(s.handleLogin))
	mux.Handle("GET /api/v1/session", s.handle(s.handleSession))
	mux.Handle("DELETE /api/v1/session", s.handle(s.handleLogout))
	mux.Handle("GET /api/v1/stream", s.operator(gatehouse.RoleViewer, s.handleStream))

	mux.Handle("GET /api/v1/devices", s.operator(gatehouse.RoleViewer, s.handleListDevices))
	mux.Handle("GET /api/v1/devices/{id}", s.operator(gatehouse.RoleViewer, s.handleGetDevice))
	mux.Handle("GET /api/v1/devices/{id}/events", s.operator(gatehouse.RoleViewer, s.handleDeviceEvents))
	mux.Handle("POST /api/v1/devices/{id}/approve", s.operator(gatehouse.RoleOperator, s.handleApprove))
	mux.Handle("POST /api/v1/devices/{id}/dismiss", s.operator(gatehouse.RoleOperator, s.handleDismiss))
	mux.Handle("POST /api/v1/devices/{id}/retry", s.operator(gatehouse.RoleOperator, s.handleRetry))

	mux.Handle("POST "+protocol.PathEnroll, s.device(s.handleEnroll))
	mux.Handle("POST "+protocol.PathWait, s.device(s.handleWait))
	mux.Handle("POST "+protocol.PathAck, s.device(s.handleAck))

	mux.Handle("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path)
	}))
	return s.accessLog(securityHeaders(mux))
}

// contentSecurityPolicy allows only gatehouse's own scripts, styles and
// connections: no inline code, no third parties, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Cache-Control", "no-store")
		// Only over TLS: browsers ignore HSTS on plain http, and sending it
		// there would promise what this listener does not keep.
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hstsHeader)
		}
		next.ServeHTTP(w, r)
	})
}
