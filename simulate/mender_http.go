package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MenderServerOptions configure NewMenderServer. At least one of Token or
// User and Password is required.
type MenderServerOptions struct {
	// Token is a personal access token the server accepts as a bearer token.
	Token string
	// User and Password are what POST /api/management/v1/useradm/auth/login
	// accepts as HTTP Basic credentials.
	User, Password string
	// JWTTTL is how long login JWTs stay valid; default 1h.
	JWTTTL time.Duration
	// InventoryDelay is how long after deviceauth creates a device inventory
	// starts to hold it (Mender's workflows fill it asynchronously). 0 keeps
	// the State's setting (DefaultMenderInventoryDelay for a new one); a
	// negative value means at once.
	InventoryDelay time.Duration
	// Wrap, if set, goes around the API (inside the HTTP faults), e.g. a
	// contract.Checker's Wrap.
	Wrap func(http.Handler) http.Handler
	// State is the Mender to serve; nil means a new, empty one.
	State *Mender
}

// MenderServer serves a Mender's state over the real management and device
// API paths, with Mender's status codes, bodies and authentication. Devices
// authenticate at URL + /api/devices/v1/authentication/auth_requests.
type MenderServer struct {
	*Server
	State *Mender

	auth *menderAuth
}

// NewMenderServer starts a simulated Mender on a loopback port. Close it
// when done.
func NewMenderServer(opts MenderServerOptions) (*MenderServer, error) {
	if opts.Token == "" && (opts.User == "" || opts.Password == "") {
		return nil, errors.New("simulate: mender server needs a Token or a User and Password")
	}
	if opts.State == nil {
		opts.State = NewMender()
	}
	if opts.InventoryDelay != 0 {
		opts.State.SetInventoryDelay(opts.InventoryDelay)
	}
	auth := newMenderAuth(opts)
	srv, err := serve(menderRoutes(opts.State, auth), opts.Wrap)
	if err != nil {
		return nil, err
	}
	return &MenderServer{Server: srv, State: opts.State, auth: auth}, nil
}

// Logins counts successful logins, so tests can see a client log in again.
func (s *MenderServer) Logins() int { return s.auth.loginCount() }

// ExpireSessions invalidates every JWT issued by login so far, as if they had
// all expired: their next use is answered 401.
func (s *MenderServer) ExpireSessions() { s.auth.expireAll() }

const (
	menderDevauth   = "/api/management/v2/devauth/devices"
	menderInventory = "/api/management/v1/inventory/devices"
	// MenderAuthRequestsPath is where devices ask for their JWT.
	MenderAuthRequestsPath = "/api/devices/v1/authentication/auth_requests"
)

// IsMenderPreauthorization says whether c, a call to the simulated Mender,
// preauthorizes (or forces a key onto) the device of identity mac: a
// Refusal picks one gateway's Mender step with it.
func IsMenderPreauthorization(c Call, mac string) bool {
	if c.Method != http.MethodPost || c.Path != menderDevauth {
		return false
	}
	var req struct {
		IdentityData map[string]string `json:"identity_data"`
	}
	return json.Unmarshal(c.Body, &req) == nil && strings.EqualFold(req.IdentityData["mac"], mac)
}

// menderRoutes lists every endpoint. Like deviceauth's router (routing.go),
// the JSON endpoints check the Content-Type of a non-empty body.
func menderRoutes(m *Mender, auth *menderAuth) http.Handler {
	api := &menderAPI{m: m}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/management/v1/useradm/auth/login", auth.login)
	mux.Handle("POST "+MenderAuthRequestsPath, menderJSONOnly(http.HandlerFunc(api.authRequest)))
	for pattern, h := range api.secured() {
		mux.Handle(pattern, auth.require(h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeMenderError(w, r, http.StatusNotFound, "no such endpoint")
	})
	return mux
}

// secured are the management endpoints, which need a bearer token.
func (a *menderAPI) secured() map[string]http.Handler {
	json := func(h http.HandlerFunc) http.Handler { return menderJSONOnly(h) } // a JSON body, if any
	return map[string]http.Handler{
		"GET " + menderDevauth:                             http.HandlerFunc(a.listDevices),
		"POST " + menderDevauth:                            json(a.preauthorize),
		"POST " + menderDevauth + "/search":                json(a.searchDevices),
		"GET " + menderDevauth + "/{id}":                   http.HandlerFunc(a.getDevice),
		"DELETE " + menderDevauth + "/{id}":                http.HandlerFunc(a.decommission),
		"DELETE " + menderDevauth + "/{id}/auth/{aid}":     http.HandlerFunc(a.deleteAuthSet),
		"PUT " + menderDevauth + "/{id}/auth/{aid}/status": json(a.setAuthSetStatus),
		"GET " + menderDevauth + "/{id}/auth/{aid}/status": http.HandlerFunc(a.getAuthSetStatus),
		"GET " + menderInventory + "/{id}":                 http.HandlerFunc(a.getInventoryDevice),
		"PATCH " + menderInventory + "/{id}/tags":          http.HandlerFunc(a.setTags),
		"PUT " + menderInventory + "/{id}/tags":            http.HandlerFunc(a.setTags),
		"POST /api/management/v2/inventory/filters/search": http.HandlerFunc(a.searchInventory),
	}
}

// menderJSONOnly is Mender's contenttype.CheckJSON: a body must be sent as
// application/json (400 for an unreadable Content-Type, 415 for another).
func menderJSONOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 0 {
			ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil {
				writeMenderError(w, r, http.StatusBadRequest, "Invalid value for Content-Type header")
				return
			}
			if ct != "application/json" {
				writeMenderError(w, r, http.StatusUnsupportedMediaType, "Bad Content-Type, expected 'application/json'")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// menderAPI holds the handlers; each answers what deviceauth or inventory
// would for the same request.
type menderAPI struct{ m *Mender }

type menderPreAuthRequest struct {
	IdentityData map[string]any `json:"identity_data"`
	Pubkey       string         `json:"pubkey"`
	Force        bool           `json:"force"`
}

// preauthorize is PostDevicesV2Handler. Its 409 is the device with
// "auth_sets": null (the store's device record carries no sets; observed
// on a real server too). Its 201 names, in Location, the id the handler
// generated for a new device, relative to the collection; with force for a
// known identity that id is used by nothing, as the handler still sends it.
func (a *menderAPI) preauthorize(w http.ResponseWriter, r *http.Request) {
	var req menderPreAuthRequest
	if !decodeMender(w, r, &req) {
		return
	}
	identity, err := menderStringMap(req.IdentityData)
	if err != nil {
		writeMenderErr(w, r, err)
		return
	}
	res, err := a.m.preauthorize(identity, req.Pubkey, req.Force)
	var me *menderError
	if errors.As(err, &me) && me.status == http.StatusConflict {
		body := menderDeviceJSONOf(res.dev)
		body.AuthSets = nil
		writeMenderJSON(w, http.StatusConflict, body)
		return
	}
	if err != nil {
		writeMenderErr(w, r, err)
		return
	}
	id := res.dev.id
	if res.existed {
		id = newUUID()
	}
	w.Header().Set("Location", "devices/"+id)
	w.WriteHeader(http.StatusCreated)
}

// menderStringMap keeps identity attributes the simulator can store; Mender
// allows any JSON value, gatehouse only ever sends strings.
func menderStringMap(in map[string]any) (map[string]string, error) {
	if len(in) == 0 {
		return nil, menderBadRequest("identity_data: cannot be blank")
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		s, ok := v.(string)
		if !ok {
			return nil, menderBadRequest("identity_data.%s: the simulator only stores string values", k)
		}
		out[k] = s
	}
	return out, nil
}

func (a *menderAPI) getDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := a.m.device(r.PathValue("id"))
	if !ok {
		writeMenderError(w, r, http.StatusNotFound, "device not found")
		return
	}
	writeMenderJSON(w, http.StatusOK, menderDeviceJSONOf(d))
}

// decommission is DecommissionDeviceHandler, whose 404 has no body.
func (a *menderAPI) decommission(w http.ResponseWriter, r *http.Request) {
	writeMenderEmpty(w, r, a.m.decommission(r.PathValue("id")))
}

// deleteAuthSet is DeleteDeviceAuthSetHandler, whose 404 has no body.
func (a *menderAPI) deleteAuthSet(w http.ResponseWriter, r *http.Request) {
	writeMenderEmpty(w, r, a.m.deleteAuthSet(r.PathValue("id"), r.PathValue("aid")))
}

// setAuthSetStatus is UpdateDeviceStatusHandler.
func (a *menderAPI) setAuthSetStatus(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status string `json:"status"`
	}
	if !decodeMender(w, r, &body) {
		return
	}
	if err := a.m.setAuthSetStatus(r.PathValue("id"), r.PathValue("aid"), body.Status); err != nil {
		writeMenderErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getAuthSetStatus is GetAuthSetStatusHandler, which looks the set up by
// its id alone.
func (a *menderAPI) getAuthSetStatus(w http.ResponseWriter, r *http.Request) {
	status, ok := a.m.authSetStatus(r.PathValue("aid"))
	if !ok {
		writeMenderErr(w, r, menderAuthSetNotFound())
		return
	}
	writeMenderJSON(w, http.StatusOK, map[string]string{"status": status})
}

// writeMenderEmpty answers 204, or an error; a 404 without a body, as
// deviceauth's DELETE handlers send it.
func writeMenderEmpty(w http.ResponseWriter, r *http.Request, err error) {
	var me *menderError
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.As(err, &me) && me.status == http.StatusNotFound:
		w.WriteHeader(http.StatusNotFound)
	default:
		writeMenderErr(w, r, err)
	}
}

// decodeMender reads a JSON body, answering 400 as Mender does when it is
// missing or malformed.
func decodeMender(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeMenderBody(w, r, v, true)
}

// decodeMenderOptional is decodeMender for a body the endpoint does not require.
func decodeMenderOptional(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeMenderBody(w, r, v, false)
}

func decodeMenderBody(w http.ResponseWriter, r *http.Request, v any, required bool) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil && len(body) == 0 {
		if !required {
			return true
		}
		err = errors.New("empty body")
	}
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeMenderError(w, r, http.StatusBadRequest, "failed to decode request body: "+err.Error())
		return false
	}
	return true
}

// menderPage reads page and per_page the way Mender's list endpoints do.
func menderPage(q url.Values) (pageNo, perPage int, err error) {
	pageNo, perPage = 1, 20
	if v := q.Get("page"); v != "" {
		if pageNo, err = strconv.Atoi(v); err != nil || pageNo < 1 {
			return 0, 0, menderBadRequest("invalid page query: %q", v)
		}
	}
	if v := q.Get("per_page"); v != "" {
		if perPage, err = strconv.Atoi(v); err != nil || perPage < 1 || perPage > 500 {
			return 0, 0, menderBadRequest("invalid per_page query: %q", v)
		}
	}
	return pageNo, perPage, nil
}

// menderWindow cuts one page out of n items and says whether more follow.
func menderWindow(n, pageNo, perPage int) (lo, hi int, more bool) {
	lo = min((pageNo-1)*perPage, n)
	hi = min(lo+perPage, n)
	return lo, hi, hi < n
}

// setMenderLinks writes the Link header Mender's list endpoints send.
func setMenderLinks(w http.ResponseWriter, r *http.Request, pageNo, perPage int, more bool) {
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		return fmt.Sprintf("<%s?%s>; rel=%q", r.URL.Path, q.Encode(), rel)
	}
	links := link(1, "first")
	if pageNo > 1 {
		links += ", " + link(pageNo-1, "prev")
	}
	if more {
		links += ", " + link(pageNo+1, "next")
	}
	w.Header().Set("Link", links)
}

func writeMenderJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeMenderErr answers with the status a menderError carries; anything
// else is an internal error whose detail stays in the server.
func writeMenderErr(w http.ResponseWriter, r *http.Request, err error) {
	var me *menderError
	if errors.As(err, &me) {
		writeMenderError(w, r, me.status, me.msg)
		return
	}
	writeMenderError(w, r, http.StatusInternalServerError, "internal error")
}

// writeMenderError writes Mender's error body, echoing the caller's
// X-MEN-RequestID or making one up, as Mender's middleware does.
func writeMenderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	id := r.Header.Get("X-MEN-RequestID")
	if id == "" {
		id = newUUID()
	}
	w.Header().Set("X-MEN-RequestID", id)
	writeMenderJSON(w, status, map[string]string{"error": msg, "request_id": id})
}
