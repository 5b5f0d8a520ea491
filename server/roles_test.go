package server_test

import (
	"context"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/provision"
)

// need is who may call a route, written here independently of routes.go:
// a route whose guard changes there fails this table until it is changed
// here too.
type need int

const (
	anyone  need = iota // answers everyone
	session             // answers a browser session only (401 otherwise)
	signed              // a device's signed request (401 for operators)
	viewer
	operator
	admin
)

// routeNeeds is every operation the server documents, with a request that
// reaches its handler without changing anything (unknown ids, bad bodies).
var routeNeeds = map[string]struct {
	need need
	path string
	body string
}{
	"GET /healthz":           {anyone, "/healthz", ""},
	"GET /readyz":            {anyone, "/readyz", ""},
	"GET /metrics":           {anyone, "/metrics", ""},
	"GET /api/openapi.json":  {anyone, "/api/openapi.json", ""},
	"GET /api/v1/auth":       {anyone, "/api/v1/auth", ""},
	"POST /api/v1/session":   {anyone, "/api/v1/session", `{}`},
	"GET /api/v1/session":    {session, "/api/v1/session", ""},
	"DELETE /api/v1/session": {anyone, "/api/v1/session", ""},
	"GET /auth/sso/login":    {anyone, "/auth/sso/login", ""},
	"GET /auth/sso/callback": {anyone, "/auth/sso/callback", ""},
	"GET /api/v1/stream":     {viewer, "/api/v1/stream", ""},

	"GET /api/v1/devices":                   {viewer, "/api/v1/devices", ""},
	"GET /api/v1/devices/{id}":              {viewer, "/api/v1/devices/nosuch", ""},
	"GET /api/v1/devices/{id}/events":       {viewer, "/api/v1/devices/nosuch/events", ""},
	"POST /api/v1/devices/{id}/approve":     {operator, "/api/v1/devices/nosuch/approve", `{"name":"gw-1"}`},
	"POST /api/v1/devices/{id}/dismiss":     {operator, "/api/v1/devices/nosuch/dismiss", ""},
	"POST /api/v1/devices/{id}/restore":     {operator, "/api/v1/devices/nosuch/restore", ""},
	"POST /api/v1/devices/{id}/retry":       {operator, "/api/v1/devices/nosuch/retry", ""},
	"PATCH /api/v1/devices/{id}":            {operator, "/api/v1/devices/nosuch", `{"name":"gw-1"}`},
	"DELETE /api/v1/devices/{id}":           {operator, "/api/v1/devices/nosuch", ""},
	"POST /api/v1/devices/{id}/forget":      {operator, "/api/v1/devices/nosuch/forget", ""},
	"GET /api/v1/allowlist":                 {viewer, "/api/v1/allowlist", ""},
	"POST /api/v1/allowlist":                {operator, "/api/v1/allowlist", ""},
	"DELETE /api/v1/allowlist/{mac}":        {operator, "/api/v1/allowlist/02:00:00:00:99:99", ""},
	"POST /api/v1/bulk":                     {operator, "/api/v1/bulk", `{"action":"dismiss","ids":["nosuch"],"dry_run":true}`},
	"GET /api/v1/bulk/{id}":                 {viewer, "/api/v1/bulk/nosuch", ""},
	"GET /api/v1/devices/{id}/certificates": {viewer, "/api/v1/devices/nosuch/certificates", ""},
	"GET /api/v1/certificates":              {viewer, "/api/v1/certificates?expiring_within=14d", ""},
	"GET /api/v1/tokens":                    {admin, "/api/v1/tokens", ""},
	"POST /api/v1/tokens":                   {admin, "/api/v1/tokens", `{"name":""}`},
	"DELETE /api/v1/tokens/{id}":            {admin, "/api/v1/tokens/nosuch", ""},
	"GET /api/v1/users":                     {admin, "/api/v1/users", ""},
	"POST /api/v1/users":                    {admin, "/api/v1/users", `{"name":""}`},
	"PATCH /api/v1/users/{name}":            {admin, "/api/v1/users/nosuch", `{}`},
	"DELETE /api/v1/users/{name}":           {admin, "/api/v1/users/nosuch", ""},
	"GET /api/v1/audit":                     {admin, "/api/v1/audit", ""},
	"POST /device/v1/enroll":                {signed, "/device/v1/enroll", `{}`},
	"POST /device/v1/wait":                  {signed, "/device/v1/wait", `{}`},
	"POST /device/v1/ack":                   {signed, "/device/v1/ack", `{}`},
	"POST /device/v1/renew":                 {signed, "/device/v1/renew", `{}`},
	"POST /device/v1/renew/ack":             {signed, "/device/v1/renew/ack", `{}`},
}

// caller is one way of calling: nobody, a token of a role, or a user's
// browser session of a role (whose changes carry the CSRF header).
type caller struct {
	name string
	role gatehouse.Role // "" for nobody
	send func(t *testing.T, method, path, body string) int
}

func TestEveryRouteWithEveryRole(t *testing.T) {
	t.Parallel()
	// Every caller speaks from one address: the device limit would answer
	// 429 before the signature check this table is about.
	tb := setupWith(t, setupOpts{deviceRate: rate.Inf})
	checkTableCoversDocument(t, tb)
	callers := []caller{{name: "nobody", send: tb.sender("")}}
	for _, role := range []gatehouse.Role{gatehouse.RoleViewer, gatehouse.RoleOperator, gatehouse.RoleAdmin} {
		secret, _, err := tb.svc.CreateToken(t.Context(), provision.TokenSpec{Name: "table-" + string(role), Role: role})
		if err != nil {
			t.Fatal(err)
		}
		callers = append(callers, caller{"token " + string(role), role, tb.sender(secret)},
			caller{"user session " + string(role), role, tb.userSession(t, role)})
	}
	// Logging out ends the sessions the other routes are called with: last.
	routes := slices.Sorted(maps.Keys(routeNeeds))
	routes = append(slices.DeleteFunc(routes, func(r string) bool { return r == "DELETE /api/v1/session" }), "DELETE /api/v1/session")
	for _, route := range routes {
		rn := routeNeeds[route]
		method, _, _ := strings.Cut(route, " ")
		for _, c := range callers {
			got := c.send(t, method, rn.path, rn.body)
			if want := expectRefusal(rn.need, c); want != 0 && got != want {
				t.Errorf("%s as %s = %d, want %d", route, c.name, got, want)
			} else if want == 0 && (got == 401 || got == 403) {
				t.Errorf("%s as %s = %d, want it let through", route, c.name, got)
			}
		}
	}
}

// expectRefusal is the status c must get, or 0 when c must get through.
func expectRefusal(n need, c caller) int {
	switch n {
	case anyone:
		return 0
	case signed:
		return 401
	case session:
		if strings.HasPrefix(c.name, "user session") {
			return 0
		}
		return 401
	}
	if c.role == "" {
		return 401
	}
	min := map[need]gatehouse.Role{viewer: gatehouse.RoleViewer, operator: gatehouse.RoleOperator, admin: gatehouse.RoleAdmin}[n]
	if !c.role.Allows(min) {
		return 403
	}
	return 0
}

func checkTableCoversDocument(t *testing.T, tb *testBundle) {
	t.Helper()
	resp, err := http.Get(tb.url + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if _, ok := routeNeeds[method+" "+path]; !ok {
				t.Errorf("%s %s is documented but not in routeNeeds: say who may call it", method, path)
			}
		}
	}
}

func (tb *testBundle) sender(token string) func(t *testing.T, method, path, body string) int {
	return func(t *testing.T, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, tb.url+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return send(t, http.DefaultClient, req)
	}
}

func (tb *testBundle) userSession(t *testing.T, role gatehouse.Role) func(t *testing.T, method, path, body string) int {
	t.Helper()
	name, password := "user-"+string(role), "a long enough password"
	if _, err := tb.svc.CreateUser(t.Context(), provision.UserSpec{Name: name, Role: role, Password: password}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, tb.url)
	if code := b.do(t, "POST", "/api/v1/session", map[string]string{"user": name, "password": password}, nil, nil); code != 200 {
		t.Fatalf("log in as %s = %d", name, code)
	}
	var info struct {
		CSRF string `json:"csrf_token"`
	}
	b.do(t, "GET", "/api/v1/session", nil, nil, &info)
	return func(t *testing.T, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, tb.url+path, strings.NewReader(body))
		req.Header.Set("X-CSRF-Token", info.CSRF)
		return send(t, b.c, req)
	}
}

// send makes one request, not reading an event stream past its headers.
func send(t *testing.T, c *http.Client, req *http.Request) int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
