package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/client"
)

const cliToken = "gat_cli-test-secret"

// request is what the fake API saw of one call.
type request struct {
	Method, Path, Query, Body string
}

// fakeAPI serves canned answers per route and records every request.
type fakeAPI struct {
	URL  string
	mu   sync.Mutex
	reqs []request
}

func newFakeAPI(t *testing.T, routes map[string]http.HandlerFunc) *fakeAPI {
	t.Helper()
	api := &fakeAPI{}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.Handle(pattern, h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.reqs = append(api.reqs, request{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body)})
		api.mu.Unlock()
		if got := r.Header.Get("Authorization"); got != "Bearer "+cliToken {
			t.Errorf("Authorization = %q, want the test token", got)
		}
		if ua := r.Header.Get("User-Agent"); ua != "gatehouse-cli/"+version {
			t.Errorf("User-Agent = %q", ua)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	api.URL = srv.URL
	return api
}

func (api *fakeAPI) requests() []request {
	api.mu.Lock()
	defer api.mu.Unlock()
	return append([]request(nil), api.reqs...)
}

func reply(status int, v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
}

func apiError(status int, code, msg string) http.HandlerFunc {
	return reply(status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// runCLI runs "gatehouse devices ARGS" with env as the whole environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = runDevices(context.Background(), args, &out, &errOut, getenv)
	for _, s := range []string{out.String(), errOut.String()} {
		if strings.Contains(s, cliToken) {
			t.Errorf("output shows the API token:\n%s", s)
		}
	}
	return code, out.String(), errOut.String()
}

func envFor(api *fakeAPI) map[string]string {
	return map[string]string{"GATEHOUSE_SERVER": api.URL, "GATEHOUSE_TOKEN": cliToken}
}

const testFingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testDevices(now time.Time) []*gatehouse.Device {
	return []*gatehouse.Device{
		{ID: "aaaabbbbcccc", State: gatehouse.StatePending, MAC: "02:00:00:00:00:01", Fingerprint: testFingerprint,
			KeyType: "ed25519", VerificationCode: "123456", SourceAddr: "192.0.2.7", SameMAC: []string{"gggghhhhiiii"},
			FirstSeen: now.Add(-3 * time.Hour), LastSeen: now.Add(-2*time.Minute - 5*time.Second)},
		{ID: "ddddeeeeffff", State: gatehouse.StateProvisioning, Name: "gw-01", MAC: "02:00:00:00:00:02",
			Fingerprint: strings.Repeat("f", 64), VerificationCode: "654321",
			FirstSeen: now.Add(-72 * time.Hour), LastSeen: now},
	}
}

func TestDevicesListTable(t *testing.T) {
	list := client.DeviceList{Devices: testDevices(time.Now()), Total: 5}
	api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": reply(200, list)})
	code, out, errOut := runCLI(t, envFor(api), "list", "--state", "pending", "--search", "gw 0", "--limit", "2")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	want := []request{{Method: "GET", Path: "/api/v1/devices", Query: "limit=2&q=gw+0&state=pending"}}
	if got := api.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("want header, 2 rows, footer and warning, got:\n%s", out)
	}
	wantFields := [][]string{
		{"ID", "STATE", "NAME", "MAC", "FINGERPRINT", "CODE", "FIRST", "SEEN", "LAST", "SEEN", "FLAGS"},
		{"aaaabbbbcccc", "pending", "-", "02:00:00:00:00:01", testFingerprint[:16], "123", "456", "3h", "ago", "2m", "ago", "!same-mac"},
		{"ddddeeeeffff", "provisioning", "gw-01", "02:00:00:00:00:02", strings.Repeat("f", 16), "654", "321", "3d", "ago", "just", "now", "-"},
		{"2", "of", "5", "devices"},
	}
	if !strings.HasPrefix(lines[4], "! 1 share a MAC or verification code") {
		t.Errorf("no warning about the flagged gateway: %q", lines[4])
	}
	for i, want := range wantFields {
		if got := strings.Fields(lines[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], want)
		}
	}
	if strings.Index(lines[0], "STATE") != strings.Index(lines[1], "pending") {
		t.Errorf("columns not aligned:\n%s", out)
	}
}

func TestDevicesListJSON(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	list := client.DeviceList{Devices: testDevices(now), Total: 2}
	api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": reply(200, list)})
	code, out, errOut := runCLI(t, envFor(api), "list", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if got := api.requests(); len(got) != 1 || got[0].Query != "" {
		t.Errorf("requests = %+v, want one without query", got)
	}
	var got client.DeviceList
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, list) {
		t.Errorf("decoded %+v, want %+v", got, list)
	}
	if !strings.Contains(out, "\n  \"devices\": [") {
		t.Errorf("JSON not indented:\n%s", out)
	}
}

func TestDevicesListEmpty(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices": reply(200, client.DeviceList{Devices: []*gatehouse.Device{}}),
	})
	code, out, _ := runCLI(t, envFor(api), "list")
	if code != 0 || out != "0 of 0 devices\n" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

// Near its cap the pending queue is named in the list's footer; well
// below it, nothing is said.
func TestDevicesListQueueNearlyFull(t *testing.T) {
	for _, tc := range []struct {
		total int
		warn  bool
	}{{8999, false}, {9000, true}, {10000, true}} {
		list := client.DeviceList{Devices: []*gatehouse.Device{}, PendingTotal: tc.total, PendingCap: 10000}
		api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": reply(200, list)})
		code, out, _ := runCLI(t, envFor(api), "list")
		if got := strings.Contains(out, fmt.Sprintf("holds %d of at most 10000", tc.total)); code != 0 || got != tc.warn {
			t.Errorf("%d pending: exit %d, warned %v, want %v:\n%s", tc.total, code, got, tc.warn, out)
		}
	}
}

func showFixture(now time.Time) (*gatehouse.Device, []gatehouse.Event) {
	d := testDevices(now)[1]
	approved, started := now.Add(-10*time.Minute), now.Add(-9*time.Minute)
	d.ApprovedBy, d.ApprovedAt, d.KeyType, d.SourceAddr = "token:alice", &approved, "rsa-3072", "192.0.2.9"
	// In the store's order, by name; show lists them in pipeline order.
	d.Steps = []gatehouse.Step{
		{Name: gatehouse.StepDPS, State: gatehouse.StepFailed, Attempts: 3, StartedAt: &started,
			LastError: "dps: 429 Too Many Requests\n\tretry\x1b[31m later"},
		{Name: gatehouse.StepHub, State: gatehouse.StepRunning, Attempts: 15, StartedAt: &started,
			LastError: "waiting: DPS has not assigned the gateway to a hub yet"},
		{Name: gatehouse.StepMender, State: gatehouse.StepSucceeded, Attempts: 1, StartedAt: &started, FinishedAt: &started},
		{Name: gatehouse.StepVault, State: gatehouse.StepPending},
	}
	events := []gatehouse.Event{
		{ID: 1, DeviceID: d.ID, At: now.Add(-72 * time.Hour), Kind: "enrolled", Detail: "mac 02:00:00:00:00:02"},
		{ID: 2, DeviceID: d.ID, At: approved, Kind: "approved", Actor: "token:alice", Detail: "named gw-01"},
	}
	return d, events
}

func TestDevicesShowTable(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	d, events := showFixture(now)
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices/{id}":        reply(200, d),
		"GET /api/v1/devices/{id}/events": reply(200, map[string]any{"events": events}),
	})
	code, out, errOut := runCLI(t, envFor(api), "show", d.ID)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	want := []request{{Method: "GET", Path: "/api/v1/devices/" + d.ID}, {Method: "GET", Path: "/api/v1/devices/" + d.ID + "/events"}}
	if got := api.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	for _, want := range []string{
		"ID:                 ddddeeeeffff\n",
		"State:              provisioning\n",
		"Fingerprint:        " + strings.Repeat("f", 64) + "\n",
		"Key type:           rsa-3072\n",
		"Verification code:  654 321\n",
		"Source:             192.0.2.9\n",
		"Approved by:        token:alice\n",
		"Approved at:        " + now.Add(-10*time.Minute).Format(time.RFC3339) + " (10m ago)\n",
		"STEP    STATE    ATTEMPTS  STARTED  FINISHED  ERROR OR NOTE\n" +
			"mender  done     1         9m ago   9m ago    -\n" +
			"dps     failed   3         9m ago   -         dps: 429 Too Many Requests  retry [31m later\n" +
			"vault   queued   0         -        -         -\n" +
			"iothub  waiting  15        9m ago   -         waiting: DPS has not assigned the gateway to a hub yet\n",
		"TIME                  EVENT     ACTOR        DETAIL\n",
		"approved  token:alice  named gw-01\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("output passes an escape sequence through:\n%q", out)
	}
}

func TestDevicesShowJSON(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	d, events := showFixture(now)
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"GET /api/v1/devices/{id}":        reply(200, d),
		"GET /api/v1/devices/{id}/events": reply(200, map[string]any{"events": events}),
	})
	code, out, errOut := runCLI(t, envFor(api), "show", "-o", "json", d.ID)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	var got struct {
		Device *gatehouse.Device `json:"device"`
		Events []gatehouse.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got.Device, d) || !reflect.DeepEqual(got.Events, events) {
		t.Errorf("decoded %+v, want device %+v and events %+v", got, d, events)
	}
}

func TestDevicesApprove(t *testing.T) {
	for _, args := range [][]string{
		{"approve", "dev/1", "--name", "gw-01"},
		{"approve", "--name", "gw-01", "dev/1"},
		{"approve", "--name=gw-01", "-o", "table", "--", "dev/1"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			api := newFakeAPI(t, map[string]http.HandlerFunc{
				"POST /api/v1/devices/{id}/approve": reply(200, gatehouse.Device{ID: "dev/1", Name: "gw-01", State: gatehouse.StateApproved}),
			})
			code, out, errOut := runCLI(t, envFor(api), args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			want := []request{{Method: "POST", Path: "/api/v1/devices/dev%2F1/approve", Body: `{"name":"gw-01"}`}}
			if got := api.requests(); !reflect.DeepEqual(got, want) {
				t.Errorf("requests = %+v, want %+v", got, want)
			}
			if out != "approved dev/1 as gw-01 (state: approved)\n" {
				t.Errorf("stdout = %q", out)
			}
		})
	}
}

func TestDevicesDismiss(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/devices/{id}/dismiss": reply(200, gatehouse.Device{ID: "d1", State: gatehouse.StateDismissed}),
	})
	code, out, errOut := runCLI(t, envFor(api), "dismiss", "d1")
	if code != 0 || out != "dismissed d1\n" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	if got := api.requests(); len(got) != 1 || got[0].Method != "POST" || got[0].Path != "/api/v1/devices/d1/dismiss" {
		t.Errorf("requests = %+v", got)
	}
	code, out, _ = runCLI(t, envFor(api), "dismiss", "-o", "json", "d1")
	var d gatehouse.Device
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || d.State != gatehouse.StateDismissed {
		t.Errorf("json: exit %d, stdout %q", code, out)
	}
}

func TestDevicesFlagsOverrideEnv(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/devices/{id}/dismiss": reply(200, gatehouse.Device{ID: "d1", State: gatehouse.StateDismissed}),
	})
	env := map[string]string{"GATEHOUSE_SERVER": "http://127.0.0.1:1", "GATEHOUSE_TOKEN": "gat_wrong"}
	code, _, errOut := runCLI(t, env, "dismiss", "d1", "--server", api.URL, "--token", cliToken)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
}

func TestDevicesUsageErrors(t *testing.T) {
	api := newFakeAPI(t, nil)
	noToken := map[string]string{"GATEHOUSE_SERVER": api.URL}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // on stderr
	}{
		{"no subcommand", envFor(api), nil, "approve ID --name NAME"},
		{"unknown subcommand", envFor(api), []string{"frobnicate"}, `unknown devices command "frobnicate"`},
		{"missing token", noToken, []string{"list"}, "GATEHOUSE_TOKEN"},
		{"empty token flag", noToken, []string{"dismiss", "d1", "--token", ""}, "GATEHOUSE_TOKEN"},
		{"missing id", envFor(api), []string{"show"}, "want exactly one device ID, got 0"},
		{"two ids", envFor(api), []string{"dismiss", "d1", "d2"}, "want exactly one device ID, got 2"},
		{"list argument", envFor(api), []string{"list", "pending"}, `unexpected argument "pending"`},
		{"bad output", envFor(api), []string{"list", "-o", "yaml"}, "-o must be table or json"},
		{"bad state", envFor(api), []string{"list", "--state", "happy"}, `unknown state "happy"`},
		{"negative limit", envFor(api), []string{"list", "--limit", "-1"}, "must not be negative"},
		{"unknown flag", envFor(api), []string{"list", "--bogus"}, "flag provided but not defined: -bogus"},
		{"bad server", map[string]string{"GATEHOUSE_TOKEN": cliToken}, []string{"list", "--server", "localhost:http"}, `--server "localhost:http": port "http" is not a number`},
		{"bad server scheme", map[string]string{"GATEHOUSE_TOKEN": cliToken}, []string{"list", "--server", "ftp://localhost:21"}, `--server "ftp://localhost:21": not a server URL`},
		{"bad server env", map[string]string{"GATEHOUSE_TOKEN": cliToken, "GATEHOUSE_SERVER": "gatehouse.example.com"}, []string{"list"}, `GATEHOUSE_SERVER "gatehouse.example.com": want HOST:PORT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.env, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errOut)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
	if got := api.requests(); len(got) != 0 {
		t.Errorf("usage errors sent requests: %+v", got)
	}
}

func TestDevicesHelp(t *testing.T) {
	env := map[string]string{"GATEHOUSE_TOKEN": cliToken}
	code, out, _ := runCLI(t, env, "help")
	for _, sub := range []string{"list", "show ID", "approve ID --name NAME", "dismiss ID"} {
		if !strings.Contains(out, sub) {
			t.Errorf("help lacks %q:\n%s", sub, out)
		}
	}
	if code != 0 {
		t.Errorf("help: exit %d", code)
	}
	code, out, errOut := runCLI(t, env, "approve", "--help")
	if code != 0 || !strings.Contains(out, "usage: gatehouse devices approve ID --name NAME") || errOut != "" {
		t.Errorf("approve --help: exit %d, stdout %s, stderr %s", code, out, errOut)
	}
}

func TestDevicesAPIErrors(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/devices/{id}/approve": apiError(409, gatehouse.ECONFLICT, `name "gw-01" is already taken in gatehouse by device d2`),
		"GET /api/v1/devices":               apiError(401, gatehouse.EUNAUTHORIZED, "invalid API token"),
		"GET /api/v1/devices/{id}": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>\r\nbad gateway</html>")
		},
	})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"approve", "d1", "--name", "gw-01"}, `gatehouse: name "gw-01" is already taken in gatehouse by device d2` + "\n"},
		{[]string{"list"}, "gatehouse: invalid API token (check --token or GATEHOUSE_TOKEN)\n"},
		{[]string{"show", "d1"}, "gatehouse: GET /api/v1/devices/d1: server answered 502 Bad Gateway (not a gatehouse API response: <html> bad gateway</html>)\n"},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, envFor(api), tt.args...)
		if code != 1 || errOut != tt.want || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and stderr %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestDevicesUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	env := map[string]string{"GATEHOUSE_SERVER": srv.URL, "GATEHOUSE_TOKEN": cliToken}
	code, _, errOut := runCLI(t, env, "list")
	if code != 1 || !strings.Contains(errOut, "cannot reach gatehouse server at "+srv.URL) || !strings.Contains(errOut, "--server") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if strings.Count(errOut, "\n") != 1 {
		t.Errorf("stderr is not one line: %q", errOut)
	}
}

func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantN   string
	}{
		{[]string{"a", "-n", "x", "b"}, []string{"a", "b"}, "x"},
		{[]string{"-n", "x", "a"}, []string{"a"}, "x"},
		{[]string{"a", "--", "-n", "b"}, []string{"a", "-n", "b"}, ""},
	}
	for _, tt := range tests {
		cmd := newDeviceCmd("x", deviceIO{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
		n := cmd.fs.String("n", "", "")
		pos, err := parseInterleaved(cmd.fs, tt.args)
		if err != nil || !reflect.DeepEqual(pos, tt.wantPos) || *n != tt.wantN {
			t.Errorf("%q: pos %q, n %q, err %v; want %q, %q", tt.args, pos, *n, err, tt.wantPos, tt.wantN)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := map[time.Duration]string{
		-time.Minute: "just now", 3 * time.Second: "just now", 42 * time.Second: "42s ago",
		2*time.Minute + 59*time.Second: "2m ago", 5 * time.Hour: "5h ago", 47 * time.Hour: "47h ago", 50 * time.Hour: "2d ago",
	}
	for d, want := range tests {
		if got := ago(now.Add(-d), now); got != want {
			t.Errorf("ago(%s) = %q, want %q", d, got, want)
		}
	}
	if got := ago(time.Time{}, now); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
}

func TestDevicesRetry(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/devices/{id}/retry": reply(200, gatehouse.Device{ID: "d1", State: gatehouse.StateProvisioned}),
	})
	code, out, errOut := runCLI(t, envFor(api), "retry", "d1")
	if code != 0 || out != "retrying d1 (state: provisioned)\n" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	if got := api.requests(); len(got) != 1 || got[0].Path != "/api/v1/devices/d1/retry" {
		t.Errorf("requests = %+v", got)
	}
}

func TestDevicesApproveLabels(t *testing.T) {
	api := newFakeAPI(t, map[string]http.HandlerFunc{
		"POST /api/v1/devices/{id}/approve": reply(200, gatehouse.Device{ID: "d1", Name: "gw-01", State: gatehouse.StateApproved}),
	})
	code, _, errOut := runCLI(t, envFor(api), "approve", "d1", "--name", "gw-01", "--label", "group=line-3", "--label", "site=plant a")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	want := `{"name":"gw-01","labels":{"group":"line-3","site":"plant a"}}`
	if got := api.requests(); len(got) != 1 || got[0].Body != want {
		t.Errorf("requests = %+v, want body %s", got, want)
	}
	if code, _, errOut := runCLI(t, envFor(api), "approve", "d1", "--name", "gw-01", "--label", "novalue"); code != 2 || !strings.Contains(errOut, "KEY=VALUE") {
		t.Errorf("bad label: exit %d, stderr %s", code, errOut)
	}
}

// TestDevicesListCSV: --csv asks the list API for its CSV export with the
// same filter and sort, and writes the answer as it comes.
func TestDevicesListCSV(t *testing.T) {
	const csv = "id,state,name\naaaabbbbcccc,pending,\n"
	api := newFakeAPI(t, map[string]http.HandlerFunc{"GET /api/v1/devices": func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, csv)
	}})
	code, out, errOut := runCLI(t, envFor(api), "list", "--state", "pending", "--sort", "-last_seen", "--csv", "--limit", "5")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if out != csv {
		t.Errorf("stdout %q, want the server's CSV as it is", out)
	}
	want := []request{{Method: "GET", Path: "/api/v1/devices", Query: "format=csv&sort=-last_seen&state=pending"}}
	if got := api.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
	}
	if code, _, errOut := runCLI(t, envFor(api), "list", "--csv", "--watch"); code != 2 || !strings.Contains(errOut, "do not go together") {
		t.Errorf("--csv --watch: exit %d, %s", code, errOut)
	}
}
