package server

import (
	"log/slog"
	"net/http"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/ui"
)

// access says who may call a route.
type access int

const (
	public access = iota // anyone: probes, the page, logging in
	viewer               // operators with at least the role named
	operator
	admin
)

// route is one entry of the server's surface.
type route struct {
	pattern string
	access  access
	h       handlerFunc
}

// routes is the whole surface, with who may call each route. The role test
// holds its own copy of this table, so a change here must be made twice.
func (s *Server) routes() []route {
	return []route{
		{"GET /healthz", public, s.handleHealth},
		{"GET /readyz", public, s.handleReady},
		{"GET /metrics", public, s.handleMetrics},
		{"GET /api/openapi.json", public, s.handleOpenAPI},

		{"GET /api/v1/auth", public, s.handleLoginOptions},
		{"POST /api/v1/session", public, s.handleLogin},
		{"GET /api/v1/session", public, s.handleSession},
		{"DELETE /api/v1/session", public, s.handleLogout},
		{"GET " + PathSSOLogin, public, s.handleSSOLogin},
		{"GET " + PathSSOCallback, public, s.handleSSOCallback},
		{"GET /api/v1/stream", viewer, s.handleStream},

		{"GET /api/v1/devices", viewer, s.handleListDevices},
		{"GET /api/v1/devices/{id}", viewer, s.handleGetDevice},
		{"GET /api/v1/devices/{id}/events", viewer, s.handleDeviceEvents},
		{"POST /api/v1/devices/{id}/approve", operator, s.handleApprove},
		{"POST /api/v1/devices/{id}/dismiss", operator, s.handleDismiss},
		{"POST /api/v1/devices/{id}/retry", operator, s.handleRetry},
		{"POST /api/v1/devices/{id}/restore", operator, s.handleRestore},
		{"PATCH /api/v1/devices/{id}", operator, s.handleEditDevice},
		{"DELETE /api/v1/devices/{id}", operator, s.handleDecommission},
		{"POST /api/v1/devices/{id}/forget", operator, s.handleForget},
		{"GET /api/v1/allowlist", viewer, s.handleListAllowlist},
		{"POST /api/v1/allowlist", operator, s.handleImportAllowlist},
		{"DELETE /api/v1/allowlist/{mac}", operator, s.handleRemoveAllowlist},
		{"POST /api/v1/bulk", operator, s.handleStartBulk},
		{"GET /api/v1/bulk/{id}", viewer, s.handleGetBulk},
		{"GET /api/v1/devices/{id}/certificates", viewer, s.handleDeviceCerts},
		{"GET /api/v1/certificates", viewer, s.handleExpiringCerts},

		{"GET /api/v1/tokens", admin, s.handleListTokens},
		{"POST /api/v1/tokens", admin, s.handleCreateToken},
		{"DELETE /api/v1/tokens/{id}", admin, s.handleRevokeToken},
		{"GET /api/v1/users", admin, s.handleListUsers},
		{"POST /api/v1/users", admin, s.handleCreateUser},
		{"PATCH /api/v1/users/{name}", admin, s.handleUpdateUser},
		{"DELETE /api/v1/users/{name}", admin, s.handleDeleteUser},
		{"GET /api/v1/audit", admin, s.handleAudit},
	}
}

// Handler returns every route of the server; the whole surface is here.
func (s *Server) Handler() http.Handler {
	if s.Logger != nil {
		s.Logger = slog.New(gatehouse.OriginLogs(s.Logger.Handler()))
	}
	s.devLimit = newSourceLimiter(s.DeviceRate, s.DeviceBurst, time.Now, s.warn)
	s.devSlots = make(chan struct{}, deviceSlots)
	s.loginLimit = newSourceLimiter(s.LoginRate, s.LoginBurst, time.Now, s.warn)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", ui.Handler())
	mux.Handle("GET /assets/", ui.Handler())
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.guard(rt))
	}
	mux.Handle("POST "+protocol.PathEnroll, s.device(s.handleEnroll))
	mux.Handle("POST "+protocol.PathWait, s.device(s.handleWait))
	mux.Handle("POST "+protocol.PathAck, s.device(s.handleAck))
	mux.Handle("POST "+protocol.PathRenew, s.device(s.handleRenew))
	mux.Handle("POST "+protocol.PathRenewAck, s.device(s.handleRenewAck))

	mux.Handle("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path)
	}))
	return s.accessLog(securityHeaders(mux))
}

func (s *Server) guard(rt route) http.Handler {
	switch rt.access {
	case viewer:
		return s.operator(gatehouse.RoleViewer, rt.h)
	case operator:
		return s.operator(gatehouse.RoleOperator, rt.h)
	case admin:
		return s.operator(gatehouse.RoleAdmin, rt.h)
	}
	return s.handle(rt.h)
}

// contentSecurityPolicy allows only gatehouse's own scripts, styles and
// connections: no inline code, no third parties, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		// The device API answers agents' POSTs with JSON, never a page a
		// browser shows, so the headers that govern a page (what it may
		// load, who may frame it, what it refers) would only cost every
		// gateway's re-poll their bytes, the policy being most of them.
		if !isDevicePath(r.URL.Path) {
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Content-Security-Policy", contentSecurityPolicy)
		}
		// Only over TLS: browsers ignore HSTS on plain http, and sending it
		// there would promise what this listener does not keep.
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hstsHeader)
		}
		next.ServeHTTP(w, r)
	})
}
