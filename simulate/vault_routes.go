package simulate

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// vaultHandler answers one operation on a path; params are the segments
// the route's "+" placeholders matched.
type vaultHandler func(w http.ResponseWriter, r *http.Request, params []string)

// vaultRoute is one path pattern ("+" matches one segment) and the
// operations it supports.
type vaultRoute struct {
	pattern string
	ops     map[string]vaultHandler
}

// ServeHTTP routes the way OpenBao's request handling does: unauthenticated
// paths (logins, the PKI's cert/<serial>) first; then the token and its
// ACL, before the path is even known to exist, so a limited token sees
// 403 for a wrong mount or role where only a root token learns "no
// handler" or "unknown role".
func (a *vaultAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeVaultError(w, http.StatusNotFound, "404 page not found")
		return
	}
	path = strings.TrimSuffix(path, "/") // LIST paths end in "/"
	op, ok := vaultOperation(r)
	if !ok {
		writeVaultError(w, http.StatusMethodNotAllowed)
		return
	}
	if a.dispatch(w, r, a.openRoutes(), path, op) {
		return
	}
	tok := tokenOf(r)
	t := a.auth.lookup(tok)
	if t == nil || !t.allows(path, op) {
		writeVaultError(w, http.StatusForbidden, "permission denied")
		return
	}
	r = r.WithContext(withVaultToken(r.Context(), tok, t))
	if !a.dispatch(w, r, a.routes(), path, op) {
		a.notFound(w, path)
	}
}

// vaultOperation maps the HTTP method to Vault's logical operation (GET
// with list=true and the LIST method are both a list).
func vaultOperation(r *http.Request) (string, bool) {
	switch r.Method {
	case http.MethodGet:
		if list, _ := strconv.ParseBool(r.URL.Query().Get("list")); list {
			return "list", true
		}
		return "read", true
	case "LIST":
		return "list", true
	case http.MethodPost, http.MethodPut:
		return "update", true
	case http.MethodDelete:
		return "delete", true
	}
	return "", false
}

// openRoutes need no token.
func (a *vaultAPI) openRoutes() []vaultRoute {
	return []vaultRoute{
		{"auth/approle/login", map[string]vaultHandler{"update": a.appRoleLogin}},
		{"auth/kubernetes/login", map[string]vaultHandler{"update": a.kubernetesLogin}},
		{a.opts.Mount + "/cert/+", map[string]vaultHandler{"read": a.readCert}},
	}
}

func (a *vaultAPI) routes() []vaultRoute {
	m, issue := a.opts.Mount+"/", map[string]vaultHandler{"update": a.certificate}
	return []vaultRoute{
		{"auth/token/lookup-self", map[string]vaultHandler{"read": a.lookupSelf, "update": a.lookupSelf}},
		{"auth/token/renew-self", map[string]vaultHandler{"update": a.renewSelf}},
		{"sys/locked-users", map[string]vaultHandler{"read": a.lockedUsers}},
		{"sys/locked-users/+/unlock/+", map[string]vaultHandler{"update": a.unlockUser}},
		{m + "issue/+", issue},
		{m + "sign/+", issue},
		{m + "revoke", map[string]vaultHandler{"update": a.revoke}},
		{m + "roles/+", map[string]vaultHandler{"read": a.readRole}},
		{m + "certs", map[string]vaultHandler{"list": a.listCerts}},
		{m + "certs/detailed", map[string]vaultHandler{"list": a.listCertsDetailed}},
	}
}

// dispatch runs the route matching path, answering 405 for an operation
// the path does not support. It reports whether a route matched.
func (a *vaultAPI) dispatch(w http.ResponseWriter, r *http.Request, routes []vaultRoute, path, op string) bool {
	for _, rt := range routes {
		params, ok := matchVaultRoute(rt.pattern, path)
		if !ok {
			continue
		}
		if h := rt.ops[op]; h != nil {
			h(w, r, params)
		} else {
			writeVaultError(w, http.StatusMethodNotAllowed, "unsupported operation")
		}
		return true
	}
	return false
}

func matchVaultRoute(pattern, path string) ([]string, bool) {
	ps, ss := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(ss) {
		return nil, false
	}
	var params []string
	for i, p := range ps {
		switch {
		case p == "+" && ss[i] != "":
			params = append(params, ss[i])
		case p != ss[i]:
			return nil, false
		}
	}
	return params, true
}

// notFound is what a root token sees for a path nothing serves: the router's
// "no handler" outside any mount, the backend's "unsupported path" inside
// the PKI mount (sdk/logical ErrUnsupportedPath, a 404).
func (a *vaultAPI) notFound(w http.ResponseWriter, path string) {
	if strings.HasPrefix(path, a.opts.Mount+"/") {
		writeVaultError(w, http.StatusNotFound, "unsupported path")
		return
	}
	writeVaultError(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", path))
}
