package simulate_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/azure"
	"gatehouse/simulate"
)

const apiVersion = "?api-version=2021-10-01"

func newDPSServer(t *testing.T, opts simulate.DPSServerOptions) *simulate.DPSServer {
	t.Helper()
	s, err := simulate.NewDPSServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// token signs a service token for cs, valid for an hour.
func token(t *testing.T, cs azure.ConnectionString) string {
	t.Helper()
	tok, err := azure.SASToken(cs.HostName, cs.SharedAccessKeyName, cs.SharedAccessKey, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

// send makes one raw request; auth is the Authorization header ("" for none).
func send(t *testing.T, base, method, path, auth string, body any, header ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

func enrollmentBody(id string, keys ...string) map[string]any {
	att := map[string]any{"type": "symmetricKey"}
	if len(keys) == 2 {
		att["symmetricKey"] = map[string]string{"primaryKey": keys[0], "secondaryKey": keys[1]}
	}
	return map[string]any{"registrationId": id, "deviceId": id, "attestation": att,
		"capabilities": map[string]bool{"iotEdge": true}, "provisioningStatus": "enabled"}
}

type dpsErrorBody struct {
	ErrorCode  int    `json:"errorCode"`
	TrackingID string `json:"trackingId"`
	Message    string `json:"message"`
}

func TestDPSServerAuth(t *testing.T) {
	s := newDPSServer(t, simulate.DPSServerOptions{})
	cs := s.ConnectionString
	if cs.HostName != simulate.DefaultDPSHost || cs.SharedAccessKeyName != "provisioningserviceowner" {
		t.Errorf("ConnectionString = %v", cs)
	}
	good := token(t, cs)
	other := cs
	other.SharedAccessKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	policy := cs
	policy.SharedAccessKeyName = "enrollmentread"
	host := cs
	host.HostName = "other.azure-devices-provisioning.net"
	expired, _ := azure.SASToken(cs.HostName, cs.SharedAccessKeyName, cs.SharedAccessKey, time.Now().Add(-time.Minute))
	tests := map[string]struct {
		path, auth string
		status     int
	}{
		"Valid":         {"/enrollments/gw-01" + apiVersion, good, http.StatusNotFound},
		"NoAPIVersion":  {"/enrollments/gw-01", good, http.StatusBadRequest},
		"NoToken":       {"/enrollments/gw-01" + apiVersion, "", http.StatusUnauthorized},
		"WrongKey":      {"/enrollments/gw-01" + apiVersion, token(t, other), http.StatusUnauthorized},
		"UnknownPolicy": {"/enrollments/gw-01" + apiVersion, token(t, policy), http.StatusUnauthorized},
		"OtherHost":     {"/enrollments/gw-01" + apiVersion, token(t, host), http.StatusUnauthorized},
		"Expired":       {"/enrollments/gw-01" + apiVersion, expired, http.StatusUnauthorized},
		"Garbage":       {"/enrollments/gw-01" + apiVersion, "SharedAccessSignature x", http.StatusUnauthorized},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := send(t, s.URL, "GET", tc.path, tc.auth, nil)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d: %s", r.status, tc.status, r.body)
			}
			var e dpsErrorBody
			r.json(t, &e)
			if e.ErrorCode/1000 != tc.status || e.TrackingID == "" || e.Message == "" {
				t.Errorf("error body = %s, want {errorCode %dxxx, trackingId, message}", r.body, tc.status)
			}
			if r.header.Get("x-ms-error-code") == "" {
				t.Errorf("no x-ms-error-code header")
			}
			if strings.Contains(string(r.body), "sig=") {
				t.Errorf("error body echoes the token: %s", r.body)
			}
		})
	}
}

func TestDPSServerEnrollmentLifecycle(t *testing.T) {
	s := newDPSServer(t, simulate.DPSServerOptions{})
	auth := token(t, s.ConnectionString)
	k1, k2 := symmetricKey(t, 32), symmetricKey(t, 32)
	path := "/enrollments/gw-01" + apiVersion

	r := send(t, s.URL, "PUT", path, auth, enrollmentBody("gw-01", k1, k2))
	if r.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	var created map[string]any
	r.json(t, &created)
	for _, f := range []string{"registrationId", "deviceId", "attestation", "capabilities", "etag", "provisioningStatus", "createdDateTimeUtc", "lastUpdatedDateTimeUtc"} {
		if created[f] == nil {
			t.Errorf("PUT answer lacks %s: %s", f, r.body)
		}
	}
	etag := created["etag"].(string)

	r = send(t, s.URL, "GET", path, auth, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), k1) || r.header.Get("ETag") != etag {
		t.Errorf("GET: %d %s (ETag %q, want %q)", r.status, r.body, r.header.Get("ETag"), etag)
	}
	if r := send(t, s.URL, "PUT", path, auth, enrollmentBody("gw-01", k2, k1), "If-Match", `"stale"`); r.status != http.StatusPreconditionFailed {
		t.Errorf("PUT with a stale If-Match: %d %s, want 412", r.status, r.body)
	}
	r = send(t, s.URL, "PUT", path, auth, enrollmentBody("gw-01", k2, k1), "If-Match", etag)
	var updated map[string]any
	r.json(t, &updated)
	if r.status != http.StatusOK || updated["etag"] == etag || updated["createdDateTimeUtc"] != created["createdDateTimeUtc"] {
		t.Errorf("PUT with the current If-Match: %d %s; want a new etag, same creation time", r.status, r.body)
	}
	if r := send(t, s.URL, "PUT", path, auth, enrollmentBody("gw-01", k1, k2)); r.status != http.StatusOK {
		t.Errorf("PUT over an existing enrollment without If-Match: %d %s, want 200 (replace)", r.status, r.body)
	}
	if r := send(t, s.URL, "DELETE", path, auth, nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	r = send(t, s.URL, "GET", path, auth, nil)
	var e dpsErrorBody
	r.json(t, &e)
	if r.status != http.StatusNotFound || e.ErrorCode != 404201 {
		t.Errorf("GET after DELETE: %d %s, want 404 with errorCode 404201", r.status, r.body)
	}
	if r := send(t, s.URL, "DELETE", path, auth, nil); r.status != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", r.status)
	}
}

func TestDPSServerPutRefusals(t *testing.T) {
	s := newDPSServer(t, simulate.DPSServerOptions{ConflictOnExisting: true})
	auth := token(t, s.ConnectionString)
	path := "/enrollments/gw-01" + apiVersion
	if r := send(t, s.URL, "PUT", path, auth, enrollmentBody("gw-01")); r.status != http.StatusOK {
		t.Fatalf("PUT without keys: %d %s", r.status, r.body)
	}
	tests := map[string]struct {
		path   string
		body   any
		header []string
		status int
	}{
		"Existing":       {path, enrollmentBody("gw-01"), nil, http.StatusConflict},
		"IDMismatch":     {"/enrollments/gw-02" + apiVersion, enrollmentBody("gw-03"), nil, http.StatusBadRequest},
		"BadID":          {"/enrollments/-gw" + apiVersion, enrollmentBody("-gw"), nil, http.StatusBadRequest},
		"X509":           {"/enrollments/gw-04" + apiVersion, map[string]any{"registrationId": "gw-04", "attestation": map[string]string{"type": "x509"}}, nil, http.StatusBadRequest},
		"ShortKey":       {"/enrollments/gw-05" + apiVersion, enrollmentBody("gw-05", "AAAA", "AAAA"), nil, http.StatusBadRequest},
		"NotJSON":        {"/enrollments/gw-06" + apiVersion, "not an object", nil, http.StatusBadRequest},
		"TextPlain":      {"/enrollments/gw-07" + apiVersion, enrollmentBody("gw-07"), []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		"IfMatchMissing": {"/enrollments/gw-08" + apiVersion, enrollmentBody("gw-08"), []string{"If-Match", "*"}, http.StatusPreconditionFailed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := send(t, s.URL, "PUT", tc.path, auth, tc.body, tc.header...)
			if r.status != tc.status {
				t.Errorf("status = %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
	if n := s.State.Len(); n != 1 {
		t.Errorf("%d enrollments stored, want 1", n)
	}
	if e := s.State.Enrollments()[0]; e.PrimaryKey == "" || e.SecondaryKey == "" {
		t.Errorf("keys were not generated: %+v", e)
	}
}

func TestDPSServerHideKeys(t *testing.T) {
	s := newDPSServer(t, simulate.DPSServerOptions{HideKeys: true})
	auth := token(t, s.ConnectionString)
	k1, k2 := symmetricKey(t, 32), symmetricKey(t, 32)
	if r := send(t, s.URL, "PUT", "/enrollments/gw-01"+apiVersion, auth, enrollmentBody("gw-01", k1, k2)); !strings.Contains(string(r.body), k1) {
		t.Errorf("PUT answer lacks the keys: %d %s", r.status, r.body)
	}
	if r := send(t, s.URL, "GET", "/enrollments/gw-01"+apiVersion, auth, nil); r.status != 200 || strings.Contains(string(r.body), k1) {
		t.Errorf("GET: %d %s, want no keys", r.status, r.body)
	}
	r := send(t, s.URL, "POST", "/enrollments/gw-01/attestationmechanism"+apiVersion, auth, nil)
	if r.status != 200 || !strings.Contains(string(r.body), k1) || !strings.Contains(string(r.body), k2) {
		t.Errorf("attestationmechanism: %d %s, want both keys", r.status, r.body)
	}
}

func TestDPSServerQuery(t *testing.T) {
	s := newDPSServer(t, simulate.DPSServerOptions{})
	auth := token(t, s.ConnectionString)
	for _, id := range []string{"gw-01", "gw-02", "gw-03"} {
		send(t, s.URL, "PUT", "/enrollments/"+id+apiVersion, auth, enrollmentBody(id))
	}
	q := map[string]string{"query": "*"}
	r := send(t, s.URL, "POST", "/enrollments/query"+apiVersion, auth, q, "x-ms-max-item-count", "2")
	var page []map[string]any
	r.json(t, &page)
	next := r.header.Get("x-ms-continuation")
	if r.status != 200 || len(page) != 2 || next == "" || r.header.Get("x-ms-item-type") != "Enrollment" {
		t.Fatalf("first page: %d, %d items, continuation %q", r.status, len(page), next)
	}
	r = send(t, s.URL, "POST", "/enrollments/query"+apiVersion, auth, q, "x-ms-max-item-count", "2", "x-ms-continuation", next)
	r.json(t, &page)
	if len(page) != 1 || page[0]["registrationId"] != "gw-03" || r.header.Get("x-ms-continuation") != "" {
		t.Errorf("second page: %s (continuation %q)", r.body, r.header.Get("x-ms-continuation"))
	}
	if r := send(t, s.URL, "POST", "/enrollments/query"+apiVersion, auth, map[string]string{}); r.status != http.StatusBadRequest {
		t.Errorf("query without a query: %d, want 400", r.status)
	}
}

func TestDPSServerRegistration(t *testing.T) {
	hubs := newHubServer(t, simulate.HubServerOptions{})
	s := newDPSServer(t, simulate.DPSServerOptions{Hub: hubs.State, AssignDelay: 30 * time.Millisecond})
	auth := token(t, s.ConnectionString)
	k1, k2 := symmetricKey(t, 32), symmetricKey(t, 32)
	send(t, s.URL, "PUT", "/enrollments/gw-01"+apiVersion, auth, enrollmentBody("gw-01", k1, k2))
	r := send(t, s.URL, "GET", "/registrations/gw-01"+apiVersion, auth, nil)
	var e dpsErrorBody
	r.json(t, &e)
	if r.status != http.StatusNotFound || e.ErrorCode != 404202 {
		t.Fatalf("before registering: %d %s, want 404 with errorCode 404202", r.status, r.body)
	}
	if err := s.State.Register("gw-01", k1, ""); err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	send(t, s.URL, "GET", "/registrations/gw-01"+apiVersion, auth, nil).json(t, &reg)
	if reg["status"] != "assigning" {
		t.Errorf("right after Register: %v, want assigning", reg)
	}
	waitAssigned(t, s.State, "gw-01")
	send(t, s.URL, "GET", "/registrations/gw-01"+apiVersion, auth, nil).json(t, &reg)
	if reg["status"] != "assigned" || reg["assignedHub"] != simulate.DefaultHubHost || reg["deviceId"] != "gw-01" || reg["etag"] == nil {
		t.Errorf("registration = %v", reg)
	}
	var enr struct {
		RegistrationState map[string]any `json:"registrationState"`
	}
	send(t, s.URL, "GET", "/enrollments/gw-01"+apiVersion, auth, nil).json(t, &enr)
	if enr.RegistrationState["status"] != "assigned" {
		t.Errorf("enrollment's registrationState = %v", enr.RegistrationState)
	}
	hr := send(t, hubs.URL, "GET", "/devices/gw-01?api-version=2021-04-12", token(t, hubs.ConnectionStrings[0]), nil)
	if hr.status != http.StatusOK {
		t.Errorf("device not in the hub after assignment: %d %s", hr.status, hr.body)
	}
	if r := send(t, s.URL, "DELETE", "/registrations/gw-01"+apiVersion, auth, nil); r.status != http.StatusNoContent {
		t.Errorf("DELETE registration: %d %s", r.status, r.body)
	}
}

func TestDPSServerFaults(t *testing.T) {
	s := newDPSServer(t, simulate.DPSServerOptions{})
	s.Faults.FailNext(1, http.StatusTooManyRequests, time.Second)
	r := send(t, s.URL, "GET", "/enrollments/gw-01"+apiVersion, token(t, s.ConnectionString), nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Errorf("faulted request: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestDPSServerWrap(t *testing.T) {
	var seen atomic.Int32
	s := newDPSServer(t, simulate.DPSServerOptions{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.Add(1)
			h.ServeHTTP(w, r)
		})
	}})
	send(t, s.URL, "GET", "/enrollments/gw-01"+apiVersion, token(t, s.ConnectionString), nil)
	if n := seen.Load(); n != 1 {
		t.Errorf("Wrap saw %d requests, want 1", n)
	}
}
