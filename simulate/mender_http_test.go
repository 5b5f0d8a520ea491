package simulate_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/simulate"
)

const menderPAT = "pat-for-tests"

func newMenderServer(t *testing.T, opts simulate.MenderServerOptions) *simulate.MenderServer {
	t.Helper()
	s, err := simulate.NewMenderServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type menderCall struct {
	method, path, token string
	body                any // JSON-encoded unless a string
	header              map[string]string
}

// do sends c and returns the status, headers and body.
func (c menderCall) do(t *testing.T, s *simulate.MenderServer) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	switch b := c.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequest(c.method, s.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// menderErrorBody checks Mender's error shape and returns its message.
func menderErrorBody(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error     *string `json:"error"`
		RequestID string  `json:"request_id"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil || e.RequestID == "" {
		t.Fatalf("error body %q: want {\"error\", \"request_id\"}", body)
	}
	return *e.Error
}

func preauthBody(t *testing.T, mac string) map[string]any {
	return map[string]any{"identity_data": map[string]string{"mac": mac}, "pubkey": publicKeyPEM(t, "ed25519")}
}

func TestMenderServerNeedsCredentials(t *testing.T) {
	if _, err := simulate.NewMenderServer(simulate.MenderServerOptions{User: "u"}); err == nil {
		t.Fatal("a server nobody can log in to was started")
	}
}

func TestMenderServerBearer(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	const list = "/api/management/v2/devauth/devices"
	tests := map[string]struct {
		token  string
		header map[string]string
		want   int
	}{
		"PAT":           {token: menderPAT, want: http.StatusOK},
		"Missing":       {want: http.StatusUnauthorized},
		"Wrong":         {token: "not-the-pat", want: http.StatusUnauthorized},
		"ForgedJWT":     {token: "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln", want: http.StatusUnauthorized},
		"NotBearer":     {header: map[string]string{"Authorization": "Basic " + menderPAT}, want: http.StatusUnauthorized},
		"RequestIDEcho": {header: map[string]string{"X-MEN-RequestID": "req-1"}, want: http.StatusUnauthorized},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			status, h, body := menderCall{method: "GET", path: list, token: tt.token, header: tt.header}.do(t, s)
			if status != tt.want {
				t.Fatalf("status = %d, want %d (%s)", status, tt.want, body)
			}
			if status == http.StatusUnauthorized {
				menderErrorBody(t, body)
			}
			if id := tt.header["X-MEN-RequestID"]; id != "" && h.Get("X-MEN-RequestID") != id {
				t.Errorf("X-MEN-RequestID = %q, want %q echoed", h.Get("X-MEN-RequestID"), id)
			}
		})
	}
}

// login logs in with HTTP Basic and returns the status and body.
func login(t *testing.T, s *simulate.MenderServer, user, password string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+"/api/management/v1/useradm/auth/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestMenderServerLogin(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{User: "ops@example.com", Password: "s3cret", JWTTTL: time.Second})
	list := menderCall{method: "GET", path: "/api/management/v2/devauth/devices"}

	for _, creds := range [][2]string{{"ops@example.com", "wrong"}, {"other@example.com", "s3cret"}, {"", ""}} {
		if status, _, body := login(t, s, creds[0], creds[1]); status != http.StatusUnauthorized {
			t.Errorf("login %q: status = %d, want 401", creds, status)
		} else if strings.Contains(body, "s3cret") {
			t.Errorf("401 body %q echoes the password", body)
		}
	}

	status, ctype, jwt := login(t, s, "ops@example.com", "s3cret")
	if status != http.StatusOK || ctype != "application/jwt" || strings.Count(jwt, ".") != 2 {
		t.Fatalf("login = %d %q %q, want 200 application/jwt with a JWT", status, ctype, jwt)
	}
	list.token = jwt
	if status, _, body := list.do(t, s); status != http.StatusOK {
		t.Fatalf("with the JWT: status = %d (%s)", status, body)
	}
	if s.Logins() != 1 {
		t.Errorf("Logins() = %d, want 1", s.Logins())
	}
	time.Sleep(1100 * time.Millisecond) // the JWT's whole-second exp has passed
	if status, _, _ := list.do(t, s); status != http.StatusUnauthorized {
		t.Errorf("expired JWT: status = %d, want 401", status)
	}

	_, _, list.token = login(t, s, "ops@example.com", "s3cret")
	s.ExpireSessions()
	if status, _, _ := list.do(t, s); status != http.StatusUnauthorized {
		t.Errorf("after ExpireSessions: status = %d, want 401", status)
	}
}

func TestMenderServerPreauthorize(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	post := menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, "02:00:00:00:00:01")}
	status, h, body := post.do(t, s)
	if status != http.StatusCreated {
		t.Fatalf("status = %d, want 201 (%s)", status, body)
	}
	id, ok := strings.CutPrefix(h.Get("Location"), "devices/")
	if !ok || !uuidPattern.MatchString(id) || s.State.Status(id) != simulate.StatusPreauthorized {
		t.Fatalf("Location = %q, want devices/<uuid of a preauthorized device>", h.Get("Location"))
	}

	post.body = preauthBody(t, "02:00:00:00:00:01")
	status, _, body = post.do(t, s)
	var dev struct {
		ID       string          `json:"id"`
		AuthSets json.RawMessage `json:"auth_sets"`
	}
	// A real deviceauth answers the device with "auth_sets": null.
	if status != http.StatusConflict || json.Unmarshal(body, &dev) != nil || dev.ID != id || string(dev.AuthSets) != "null" {
		t.Fatalf("duplicate: %d %s, want 409 with device %s and null auth sets", status, body, id)
	}

	// With force, PreauthorizeDevice upserts the key on the known device and
	// the handler (PostDevicesV2Handler) still answers the device id it
	// generated for the request: a Location naming no device.
	forced := preauthBody(t, "02:00:00:00:00:01")
	forced["force"] = true
	post.body = forced
	status, h, _ = post.do(t, s)
	bogus, _ := strings.CutPrefix(h.Get("Location"), "devices/")
	if _, known := s.State.Device(bogus); status != http.StatusCreated || !uuidPattern.MatchString(bogus) || bogus == id || known {
		t.Errorf("force: %d %q, want 201 with a fresh id that names no device", status, h.Get("Location"))
	}
	if d, _ := s.State.Device(id); len(d.AuthSets) != 2 || d.AuthSets[1].Status != simulate.StatusPreauthorized {
		t.Errorf("force: auth sets %+v, want the new key as a second, preauthorized auth set", d.AuthSets)
	}
}

func TestMenderServerBadRequests(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	good := publicKeyPEM(t, "ed25519")
	tests := map[string]menderCall{
		"NotJSON":      {method: "POST", path: "/api/management/v2/devauth/devices", body: "{"},
		"NoBody":       {method: "POST", path: "/api/management/v2/devauth/devices"},
		"NoIdentity":   {method: "POST", path: "/api/management/v2/devauth/devices", body: map[string]any{"pubkey": good}},
		"BadKey":       {method: "POST", path: "/api/management/v2/devauth/devices", body: map[string]any{"identity_data": map[string]string{"mac": "x"}, "pubkey": "nope"}},
		"PKCS1Key":     {method: "POST", path: "/api/management/v2/devauth/devices", body: map[string]any{"identity_data": map[string]string{"mac": "x"}, "pubkey": strings.ReplaceAll(publicKeyPEM(t, "rsa"), "PUBLIC KEY", "RSA PUBLIC KEY")}},
		"BadStatus":    {method: "GET", path: "/api/management/v2/devauth/devices?status=sleeping"},
		"BadPerPage":   {method: "GET", path: "/api/management/v2/devauth/devices?per_page=501"},
		"TagsNotArray": {method: "PATCH", path: "/api/management/v1/inventory/devices/x/tags", body: map[string]string{"name": "a"}},
		"BadFilter":    {method: "POST", path: "/api/management/v2/inventory/filters/search", body: map[string]any{"filters": []map[string]any{{"scope": "nowhere", "attribute": "a", "type": "$eq", "value": "b"}}}},
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			c.token = menderPAT
			status, _, body := c.do(t, s)
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400 (%s)", status, body)
			}
			menderErrorBody(t, body)
		})
	}
	if s.State.Len() != 0 {
		t.Errorf("bad requests created %d devices", s.State.Len())
	}
}

func TestMenderServerDeviceLifecycle(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	_, h, _ := menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, "02:00:00:00:00:01")}.do(t, s)
	id := strings.TrimPrefix(h.Get("Location"), "devices/")
	dev := "/api/management/v2/devauth/devices/" + id
	tags := "/api/management/v1/inventory/devices/" + id + "/tags"

	steps := []struct {
		call menderCall
		want int
	}{
		{menderCall{method: "GET", path: dev}, http.StatusOK},
		{menderCall{method: "PATCH", path: tags, body: []map[string]string{{"name": "name", "value": "gw-01"}}}, http.StatusOK},
		// Inventory's tag writes match nothing for a device it does not
		// hold, and answer 200 all the same (updateDeviceAttributes).
		{menderCall{method: "PATCH", path: "/api/management/v1/inventory/devices/nope/tags", body: []map[string]string{{"name": "name", "value": "x"}}}, http.StatusOK},
		{menderCall{method: "GET", path: "/api/management/v2/devauth/devices/nope"}, http.StatusNotFound},
		{menderCall{method: "DELETE", path: dev}, http.StatusNoContent},
		{menderCall{method: "DELETE", path: dev}, http.StatusNotFound},
		{menderCall{method: "GET", path: dev}, http.StatusNotFound},
	}
	for i, st := range steps {
		st.call.token = menderPAT
		status, _, body := st.call.do(t, s)
		if status != st.want {
			t.Fatalf("step %d %s %s: status = %d, want %d (%s)", i, st.call.method, st.call.path, status, st.want, body)
		}
		// deviceauth's DELETE handlers answer a bare 404.
		if status >= 400 && st.call.method != "DELETE" {
			menderErrorBody(t, body)
		}
	}
}

func TestMenderServerDeviceJSON(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	_, h, _ := menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, "02:00:00:00:00:01")}.do(t, s)
	id := strings.TrimPrefix(h.Get("Location"), "devices/")
	_, _, body := menderCall{method: "GET", path: "/api/management/v2/devauth/devices/" + id, token: menderPAT}.do(t, s)
	var d map[string]any
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "identity_data", "status", "created_ts", "updated_ts", "auth_sets"} {
		if _, ok := d[k]; !ok {
			t.Errorf("device JSON lacks %q: %s", k, body)
		}
	}
	sets, _ := d["auth_sets"].([]any)
	set, _ := sets[0].(map[string]any)
	for _, k := range []string{"id", "identity_data", "pubkey", "status", "ts"} {
		if _, ok := set[k]; !ok {
			t.Errorf("auth set JSON lacks %q: %s", k, body)
		}
	}
	if _, err := time.Parse(time.RFC3339, d["created_ts"].(string)); err != nil {
		t.Errorf("created_ts: %v", err)
	}
}

func TestMenderServerListAndSearch(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	var ids []string
	for _, mac := range []string{"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"} {
		_, h, _ := menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, mac)}.do(t, s)
		ids = append(ids, strings.TrimPrefix(h.Get("Location"), "devices/"))
	}
	s.State.IndexNow()
	for _, id := range ids[:2] {
		menderCall{method: "PATCH", path: "/api/management/v1/inventory/devices/" + id + "/tags", token: menderPAT, body: []map[string]string{{"name": "site", "value": "north"}}}.do(t, s)
	}

	status, h, body := menderCall{method: "GET", path: "/api/management/v2/devauth/devices?per_page=2&status=preauthorized", token: menderPAT}.do(t, s)
	if got := decodeIDs(t, body); status != http.StatusOK || len(got) != 2 || got[0] != ids[0] || !strings.Contains(h.Get("Link"), `rel="next"`) {
		t.Errorf("list page 1: %d %v Link %q, want the two oldest and a next link", status, got, h.Get("Link"))
	}
	_, _, body = menderCall{method: "POST", path: "/api/management/v2/devauth/devices/search", token: menderPAT, body: map[string]any{"id": ids[2]}}.do(t, s)
	if got := decodeIDs(t, body); len(got) != 1 || got[0] != ids[2] {
		t.Errorf("devauth search by id = %v, want [%s]", got, ids[2])
	}

	search := map[string]any{
		"per_page":   1,
		"filters":    []map[string]any{{"scope": "tags", "attribute": "site", "type": "$eq", "value": "north"}},
		"attributes": []map[string]string{{"scope": "tags", "attribute": "site"}},
	}
	status, h, body = menderCall{method: "POST", path: "/api/management/v2/inventory/filters/search", token: menderPAT, body: search}.do(t, s)
	var hits []struct {
		ID         string `json:"id"`
		Attributes []struct {
			Name, Scope, Value string
		} `json:"attributes"`
	}
	if err := json.Unmarshal(body, &hits); err != nil || status != http.StatusOK {
		t.Fatalf("inventory search: %d %s", status, body)
	}
	if h.Get("X-Total-Count") != "2" || len(hits) != 1 || hits[0].ID != ids[0] {
		t.Errorf("inventory search = %+v, X-Total-Count %q; want 1 of 2 hits", hits, h.Get("X-Total-Count"))
	}
	if a := hits[0].Attributes; len(a) != 1 || a[0].Name != "site" || a[0].Scope != "tags" || a[0].Value != "north" {
		t.Errorf("attributes = %+v, want only the selected tag", a)
	}
}

func decodeIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var devs []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &devs); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	var ids []string
	for _, d := range devs {
		ids = append(ids, d.ID)
	}
	return ids
}

func TestMenderServerFaultsAndWrap(t *testing.T) {
	var wrapped atomic.Int32
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT, Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wrapped.Add(1)
			h.ServeHTTP(w, r)
		})
	}})
	s.Faults.FailNext(1, http.StatusTooManyRequests, 2*time.Second)
	list := menderCall{method: "GET", path: "/api/management/v2/devauth/devices", token: menderPAT}
	if status, h, _ := list.do(t, s); status != http.StatusTooManyRequests || h.Get("Retry-After") != "2" {
		t.Errorf("faulted: %d Retry-After %q, want 429 with Retry-After 2", status, h.Get("Retry-After"))
	}
	if status, _, _ := list.do(t, s); status != http.StatusOK {
		t.Errorf("after the fault: %d, want 200", status)
	}
	if n := wrapped.Load(); n != 1 {
		t.Errorf("Wrap saw %d requests, want 1 (faults sit in front of it)", n)
	}
}

// TestMenderServerAuthSetEndpoints: PUT .../auth/{aid}/status answers 204
// (UpdateDeviceStatusHandler), 400 for a status statusValidate refuses or
// an undecodable body, 404 with an error body for an unknown set; DELETE
// .../auth/{aid} answers 204 or a bare 404 (DeleteDeviceAuthSetHandler);
// GET .../auth/{aid}/status the set's status.
func TestMenderServerAuthSetEndpoints(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	id, aid := pendingDevice(t, s.State, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
	set := "/api/management/v2/devauth/devices/" + id + "/auth/" + aid
	steps := []struct {
		call     menderCall
		want     int
		errBody  bool
		wantSets string // the set's status afterwards
	}{
		{menderCall{method: "PUT", path: set + "/status", body: map[string]string{"status": "preauthorized"}}, 400, true, "pending"},
		{menderCall{method: "PUT", path: set + "/status", body: "{"}, 400, true, "pending"},
		{menderCall{method: "PUT", path: set + "/status", body: map[string]string{"status": "accepted"}}, 204, false, "accepted"},
		{menderCall{method: "GET", path: set + "/status"}, 200, false, "accepted"},
		{menderCall{method: "PUT", path: "/api/management/v2/devauth/devices/" + id + "/auth/nope/status", body: map[string]string{"status": "accepted"}}, 404, true, "accepted"},
		{menderCall{method: "DELETE", path: "/api/management/v2/devauth/devices/" + id + "/auth/nope"}, 404, false, "accepted"},
		{menderCall{method: "DELETE", path: set}, 204, false, ""},
		{menderCall{method: "GET", path: set + "/status"}, 404, true, ""},
	}
	for i, st := range steps {
		st.call.token = menderPAT
		status, _, body := st.call.do(t, s)
		if status != st.want {
			t.Fatalf("step %d %s %s: %d, want %d (%s)", i, st.call.method, st.call.path, status, st.want, body)
		}
		if st.errBody {
			menderErrorBody(t, body)
		} else if status == 404 && len(body) != 0 {
			t.Errorf("step %d: 404 body %q, want none", i, body)
		}
		if got := authSetStatus(s.State, id, aid); got != st.wantSets {
			t.Errorf("step %d: auth set %q, want %q", i, got, st.wantSets)
		}
	}
	if got := s.State.Status(id); got != "noauth" {
		t.Errorf("device %q after its only set went, want noauth", got)
	}
}

// A refusal picked by IsMenderPreauthorization fails that one gateway's
// preauthorization, whatever the case of its MAC, and leaves every other
// call alone.
func TestMenderRefusalOfOneGateway(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	s.Faults.SetRefusal(&simulate.Refusal{Message: "refused for the test",
		Match: func(c simulate.Call) bool { return simulate.IsMenderPreauthorization(c, "02:00:00:00:00:0a") }})
	post := menderCall{method: "POST", path: "/api/management/v2/devauth/devices", token: menderPAT, body: preauthBody(t, "02:00:00:00:00:0A")}
	if status, _, body := post.do(t, s); status != http.StatusInternalServerError || !strings.Contains(string(body), "refused for the test") {
		t.Errorf("the picked gateway: %d %s, want 500 with the refusal's message", status, body)
	}
	post.body = preauthBody(t, "02:00:00:00:00:0b")
	if status, _, body := post.do(t, s); status != http.StatusCreated {
		t.Errorf("another gateway: %d %s, want 201", status, body)
	}
	list := menderCall{method: "GET", path: "/api/management/v2/devauth/devices", token: menderPAT}
	if status, _, body := list.do(t, s); status != http.StatusOK {
		t.Errorf("a list: %d %s, want 200", status, body)
	}
	if s.State.Len() != 1 {
		t.Errorf("mender holds %d devices, want the other gateway's alone", s.State.Len())
	}
}
