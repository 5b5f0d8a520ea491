package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/config"
	"gatehouse/deploy/manifests"
	"gatehouse/internal/logtest"
	"gatehouse/manifest"
	"gatehouse/mender"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/sandbox"
	"gatehouse/simulate"
	"gatehouse/vault"
	"gatehouse/webhook"
)

// TestNoSecretInLogsOrDatabase runs the whole flow at debug level with
// every backend simulated: a token made on the command line, enrollment,
// a failed and a good browser login, approval through the session,
// provisioning into Mender, DPS and Vault, delivery and receipt of the
// credentials, the IoT Hub follow-up, webhooks and the operator CLI. Each
// backend and the webhook receiver first refuse once, echoing the
// credentials (DPS also the keys) they were sent, so failure reasons are
// covered too. Then it scans every log line, every operator answer, every
// webhook and the database files on disk for every secret the flow
// handled, in the encodings a leak could take.
func TestNoSecretInLogsOrDatabase(t *testing.T) {
	// No deadline over the whole test: each wait below has its own.
	ctx := context.Background()
	secrets := &secretSet{}
	f := startScannedFlow(t, secrets)
	f.provision(t, ctx)
	running := f.readDBFiles(t)
	f.stop(t)
	for _, l := range f.scan(t, running) {
		t.Errorf("secret found: %s", l)
	}
	t.Logf("scanned %d server and %d agent log lines, %d answers and the database for: %s",
		bytes.Count(f.serverLog.Bytes(), []byte("\n")), bytes.Count(f.agentLog.Bytes(), []byte("\n")), len(f.answers),
		strings.Join(secrets.names(), ", "))
	f.checkCoverage(t)
}

// scan looks for every secret in the logs, answers and webhooks, and for
// those the database must not hold in its files: as they were while the
// server ran, and as a clean shutdown left them.
func (f *scannedFlow) scan(t *testing.T, running map[string][]byte) []string {
	t.Helper()
	ns, dbNeedles := f.secrets.needles(everySecret), f.secrets.needles(notInDBByDesign)
	var leaks []string
	leaks = append(leaks, scanLines("the server log", f.serverLog.Bytes(), ns)...)
	leaks = append(leaks, scanLines("the agent log", f.agentLog.Bytes(), ns)...)
	leaks = append(leaks, scanLines("webhook deliveries", f.hooks.Bytes(), ns)...)
	for _, a := range f.answers {
		leaks = append(leaks, scanLines(a.where, a.body, ns)...)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		path := f.dbPath + suffix
		if data, ok := running[path]; ok {
			leaks = append(leaks, scanBytes(path+" while running", data, dbNeedles)...)
		}
		found, err := scanFile(path, path+" after shutdown", dbNeedles)
		if err != nil {
			t.Fatal(err)
		}
		leaks = append(leaks, found...)
	}
	return leaks
}

// scannedFlow is a server at debug level with simulated backends that
// record every credential gatehouse presents to them.
type scannedFlow struct {
	secrets               *secretSet
	sims                  *sandbox.Simulators
	a                     *app
	closeApp              func() error
	dbPath, dir           string
	serverLog, agentLog   logtest.Buffer
	hooks                 logtest.Buffer
	adminToken, opToken   string
	password              string // of the local admin user scan-alice
	answers               []answer
	faults                map[string]*echoFault
	stopMender, stopAgent context.CancelFunc
}

// answer is what an operator endpoint or CLI command gave back.
type answer struct {
	where string
	body  []byte
}

func startScannedFlow(t *testing.T, secrets *secretSet) *scannedFlow {
	t.Helper()
	f := &scannedFlow{secrets: secrets, dir: t.TempDir()}
	f.dbPath = filepath.Join(f.dir, "gatehouse.db")
	log, err := newLogger(&f.serverLog, "debug")
	if err != nil {
		t.Fatal(err)
	}
	// The first admin token is made on the command line, as in the README.
	f.adminToken = f.cli(t, 0, nil, "tokens", "create", "--db", f.dbPath, "--name", "scan-admin", "--role", "admin")
	f.adminToken = strings.TrimSpace(f.adminToken)
	secrets.addString("API token scan-admin", f.adminToken)
	f.password = strings.TrimSpace(f.cli(t, 0, nil, "users", "create", "--db", f.dbPath, "--name", "scan-alice"))
	secrets.addString("password of scan-alice", f.password)

	var cfg *config.Config
	f.faults = echoFaults()
	f.sims, cfg = startRecordingSims(t, secrets, f.faults)
	cfg.Logger = log
	cfg.Webhook = f.webhookReceiver(t)
	ac, err := appFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac.Listen, ac.DB, ac.Logger = "127.0.0.1:0", f.dbPath, log
	ac.Jobs.FollowPollMin, ac.Jobs.RetryBase, ac.Jobs.RetryMax = 50*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond
	if f.a, err = startApp(context.Background(), ac); err != nil {
		t.Fatal(err)
	}
	f.closeApp = sync.OnceValue(f.a.Close)
	t.Cleanup(func() { f.closeApp() })
	op, _, err := f.a.svc.CreateToken(context.Background(), provision.TokenSpec{Name: "scan-cli", Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	f.opToken = op
	secrets.addString("API token scan-cli", op)
	return f
}

// startRecordingSims starts every simulator with login credentials rather
// than static tokens, so the flow handles a Mender password and login JWT
// and a Vault AppRole secret_id and client token, and records each
// credential gatehouse sends.
func startRecordingSims(t *testing.T, secrets *secretSet, faults map[string]*echoFault) (*sandbox.Simulators, *config.Config) {
	t.Helper()
	rec := credRecorder{secrets}
	user, password := "gatehouse-ops", randomHex(24)
	roleID, secretID := "gatehouse-"+randomHex(8), randomHex(24)
	sims := &sandbox.Simulators{}
	t.Cleanup(func() { sims.Close() })
	var err error
	if sims.Mender, err = simulate.NewMenderServer(simulate.MenderServerOptions{User: user, Password: password, Wrap: rec.wrap("mender", faults["mender"])}); err != nil {
		t.Fatal(err)
	}
	if sims.Hub, err = simulate.NewHubServer(simulate.HubServerOptions{Wrap: rec.wrap("iothub", faults["iothub"])}); err != nil {
		t.Fatal(err)
	}
	if sims.DPS, err = simulate.NewDPSServer(simulate.DPSServerOptions{Hub: sims.Hub.State, AssignDelay: 100 * time.Millisecond, Wrap: rec.wrap("dps", faults["dps"])}); err != nil {
		t.Fatal(err)
	}
	role := simulate.RecommendedVaultRole()
	if sims.Vault, err = simulate.NewVaultServer(simulate.VaultServerOptions{Role: "gateway", RoleConfig: &role,
		AppRoleID: roleID, AppRoleSecretID: secretID, Wrap: rec.wrap("vault", faults["vault"])}); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.FromBytes("iotedge-1.5.json", manifests.IoTEdge15)
	if err != nil {
		t.Fatal(err)
	}
	dps, hubs := sims.DPS.Config(), sims.Hub.Config()
	secrets.addString("Mender password (config)", password)
	secrets.addString("Vault AppRole secret_id (config)", secretID)
	addBase64Secret(secrets, "DPS connection string key (config)", dps.ConnectionString.SharedAccessKey)
	for i, cs := range hubs.Hubs {
		addBase64Secret(secrets, fmt.Sprintf("IoT Hub %d connection string key (config)", i+1), cs.SharedAccessKey)
	}
	return sims, &config.Config{
		Manifests: m,
		Mender:    &mender.Config{URL: sims.Mender.URL, User: user, Password: password},
		DPS:       &dps,
		Hubs:      &hubs,
		Vault:     &vault.Config{Addr: sims.Vault.URL, Role: "gateway", AppRoleID: roleID, AppRoleSecretID: secretID},
	}
}

// echoFaults refuse each backend's first provisioning call, echoing the
// credentials it carried; DPS also echoes the body, which holds the new
// enrollment's keys. Gatehouse retries each step and the flow goes on.
func echoFaults() map[string]*echoFault {
	call := func(method, suffix string) func(*http.Request) bool {
		return func(r *http.Request) bool {
			return r.Method == method && strings.Contains(r.URL.Path, suffix)
		}
	}
	faults := map[string]*echoFault{
		"mender": {match: call("POST", "/devauth/devices"), echo: []string{"credentials"}},
		"dps":    {match: call("PUT", "/enrollments/"), echo: []string{"credentials", "body"}},
		"vault":  {match: call("POST", "/pki/issue/"), echo: []string{"credentials"}},
		"iothub": {match: call("POST", "/applyConfigurationContent"), echo: []string{"credentials"}},
	}
	for _, f := range faults {
		f.want = len(f.echo)
	}
	return faults
}

// webhookReceiver takes deliveries on loopback; its URL carries an access
// token, as receivers often want, and the signing secret is gatehouse's.
// Its first answer is a failure that echoes the URL it was called on.
func (f *scannedFlow) webhookReceiver(t *testing.T) *webhook.Sender {
	var refused sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		echoed := false
		refused.Do(func() {
			echoed = true
			writeEchoStatus(w, http.StatusServiceUnavailable, "not ready for "+r.URL.String())
		})
		if !echoed {
			f.hooks.Write(append(b, '\n'))
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(srv.Close)
	token, secret := randomHex(24), randomHex(32)
	f.secrets.addString("webhook URL access token (config)", token)
	f.secrets.addString("webhook signing secret (config)", secret)
	return &webhook.Sender{URL: srv.URL + "/gatehouse?access_token=" + token, Secret: []byte(secret)}
}

// provision takes one gateway from enrollment to configured, through the
// browser API, and reads it back with the CLI and the operator API.
func (f *scannedFlow) provision(t *testing.T, ctx context.Context) {
	const mac, name = "02:00:00:00:5c:01", "gw-scan"
	keyPath, out := filepath.Join(f.dir, "mender-agent.pem"), filepath.Join(f.dir, "out")
	key := writeEd25519Key(t, keyPath)
	f.addAgentKeys(t, key)

	mc, err := f.sims.MenderClient(key, mac, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	mcCtx, stopMC := context.WithCancel(ctx)
	f.stopMender = stopMC
	t.Cleanup(stopMC)
	go mc.Run(mcCtx)

	agentLog, err := newLogger(&f.agentLog, "debug")
	if err != nil {
		t.Fatal(err)
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	f.stopAgent = stopAgent
	t.Cleanup(stopAgent)
	done := make(chan error, 1)
	go func() {
		_, err := agent.Run(agentCtx, agent.Config{Server: f.a.server.URL(), InsecureHTTP: true, KeyPath: keyPath, OutDir: out,
			MAC: mac, RestartCommands: []string{}, Logger: agentLog})
		done <- err
	}()
	id := waitForN(t, f.a.svc, 1)[0]

	b := f.browserLogin(t)
	b.call(t, "POST", "/api/v1/devices/"+id+"/approve", `{"name":"`+name+`"}`, http.StatusOK)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the agent did not finish within %v of the approval", waitTimeout)
	}
	checkFiles(t, out, name)
	f.addDeliveredSecrets(t, out, name)

	registerLikeIoTEdge(agent.Config{OutDir: out, Logger: agentLog}, f.sims)
	wait, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	waitState(t, wait, f.a.svc, id, gatehouse.StateConfigured)
	checkMenderConnected(t, ctx, f.sims, mc, name)
	if !eventually(waitTimeout, func() bool { return bytes.Contains(f.hooks.Bytes(), []byte(`"state":"configured"`)) }) {
		t.Fatalf("no webhook for the configured gateway within %v", waitTimeout)
	}

	f.readBack(t, b, id)
	b.call(t, "DELETE", "/api/v1/session", "", http.StatusNoContent)
}

// browserLogin fails once with a wrong token and once with a wrong
// password, logs in with the admin token, then with the local admin's
// password as the web page does, and keeps that session's secrets.
func (f *scannedFlow) browserLogin(t *testing.T) *browser {
	t.Helper()
	b := &browser{f: f, base: f.a.server.URL()}
	wrong := "gat_" + randomHex(24)
	f.secrets.addString("wrong API token (failed login)", wrong)
	b.call(t, "POST", "/api/v1/session", `{"token":"`+wrong+`"}`, http.StatusUnauthorized)

	wrongPw := "wrong-" + randomHex(12)
	f.secrets.addString("wrong password (failed login)", wrongPw)
	b.call(t, "POST", "/api/v1/session", `{"user":"scan-alice","password":"`+wrongPw+`"}`, http.StatusUnauthorized)
	b.call(t, "POST", "/api/v1/session", `{"token":"`+f.adminToken+`"}`, http.StatusOK)

	resp, body := b.call(t, "POST", "/api/v1/session", `{"user":"scan-alice","password":"`+f.password+`"}`, http.StatusOK)
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_session" {
			b.cookie = c
		}
	}
	var info struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal(body, &info); err != nil || b.cookie == nil || info.CSRF == "" {
		t.Fatalf("login answer holds no session cookie or CSRF token (%d bytes): %v", len(body), err)
	}
	b.csrf = info.CSRF
	f.secrets.addString("session cookie secret", b.cookie.Value)
	f.secrets.addString("session CSRF token", b.csrf)
	b.call(t, "GET", "/api/v1/session", "", http.StatusOK)
	return b
}

// readBack reads the gateway as operators do: the CLI with its token, the
// operator API with a bearer token and with the session, and a CLI call
// with a wrong token. Every answer is kept for the scan.
func (f *scannedFlow) readBack(t *testing.T, b *browser, id string) {
	t.Helper()
	env := map[string]string{"GATEHOUSE_SERVER": f.a.server.URL(), "GATEHOUSE_TOKEN": f.opToken}
	for _, args := range [][]string{
		{"devices", "list"}, {"devices", "list", "-o", "json"},
		{"devices", "show", id}, {"devices", "show", id, "-o", "json"},
	} {
		f.cli(t, 0, env, args...)
	}
	wrong := "gat_" + randomHex(24)
	f.secrets.addString("wrong API token (CLI)", wrong)
	f.cli(t, 1, env, "devices", "list", "--token", wrong)

	bearer := &browser{f: f, base: f.a.server.URL(), bearer: f.adminToken}
	for _, p := range []string{"/api/v1/devices", "/api/v1/devices/" + id, "/api/v1/devices/" + id + "/events"} {
		bearer.call(t, "GET", p, "", http.StatusOK)
		b.call(t, "GET", p, "", http.StatusOK)
	}
}

// cli runs one gatehouse command, wants its exit code, and keeps its
// output for the scan. It returns stdout.
func (f *scannedFlow) cli(t *testing.T, want int, env map[string]string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr, func(k string) string { return env[k] })
	if code != want {
		t.Fatalf("gatehouse %s: exit %d, want %d; stderr: %s", args[0], code, want, stderr.String())
	}
	where := "the output of gatehouse " + strings.Join(args[:min(2, len(args))], " ")
	if args[0] != "tokens" && args[0] != "users" { // their create prints the new secret: its job
		f.answers = append(f.answers, answer{where, stdout.Bytes()})
	}
	f.answers = append(f.answers, answer{where + " (stderr)", stderr.Bytes()})
	return stdout.String()
}

// browser calls the operator API with a session cookie (and its CSRF
// token) or a bearer token, and keeps every answer for the scan.
type browser struct {
	f            *scannedFlow
	base         string
	bearer, csrf string
	cookie       *http.Cookie
}

func (b *browser) call(t *testing.T, method, path, body string, want int) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", b.base)
	if b.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+b.bearer)
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
		req.Header.Set("X-CSRF-Token", b.csrf)
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
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, path, resp.Status, want, data)
	}
	// The session endpoints hand the page its CSRF token by design.
	if !strings.HasPrefix(path, "/api/v1/session") {
		b.f.answers = append(b.f.answers, answer{fmt.Sprintf("the answer to %s %s", method, path), data})
	}
	return resp, data
}

// addAgentKeys records the gateway's identity key and the seal key the
// agent derives from it, which opens the bundle.
func (f *scannedFlow) addAgentKeys(t *testing.T, key ed25519.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f.secrets.add("agent identity key (PKCS#8)", der)
	f.secrets.add("agent identity key (Ed25519 seed)", key.Seed())
	seal, err := protocol.DeriveSealKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := seal.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	f.secrets.add("agent seal key", sb)
}

// addDeliveredSecrets records what the gateway received: both DPS keys of
// its enrollment (the secondary never leaves the server) and the private
// key Vault issued.
func (f *scannedFlow) addDeliveredSecrets(t *testing.T, out, name string) {
	t.Helper()
	env, err := readEnvFile(filepath.Join(out, "iotedge.env"))
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range f.sims.DPS.State.Enrollments() {
		if e.RegistrationID == name {
			found = e.PrimaryKey == env["DPS_SYMMETRIC_KEY"]
			addBase64Secret(f.secrets, "DPS primary key", e.PrimaryKey)
			addBase64Secret(f.secrets, "DPS secondary key", e.SecondaryKey)
		}
	}
	if !found {
		t.Fatal("the gateway's DPS key is not its enrollment's primary key")
	}
	b, err := os.ReadFile(filepath.Join(out, "device.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("device.key holds no PEM block")
	}
	f.secrets.add("Vault-issued private key (DER)", block.Bytes)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("device.key: %v", err)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		d, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		f.secrets.add("Vault-issued private key (EC scalar)", d)
	case *rsa.PrivateKey:
		f.secrets.add("Vault-issued private key (RSA prime)", k.Primes[0].Bytes())
	case ed25519.PrivateKey:
		f.secrets.add("Vault-issued private key (Ed25519 seed)", k.Seed())
	}
}

// addServerSecrets records the secrets the server keeps in its database,
// which the database holds by design but no log or answer may.
func (f *scannedFlow) addServerSecrets(t *testing.T) {
	t.Helper()
	rows, err := f.a.db.SQL().Query(`SELECT name, value FROM server_secrets`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name string
		var value []byte
		if err := rows.Scan(&name, &value); err != nil {
			t.Fatal(err)
		}
		f.secrets.addEntry(secretEntry{name: "server secret " + name, value: value, inDB: true})
		n++
	}
	if err := rows.Err(); err != nil || n == 0 {
		t.Fatalf("server secrets: %d found, %v", n, err)
	}
}

// readDBFiles reads the database and its WAL and shared-memory files as
// they are on disk now.
func (f *scannedFlow) readDBFiles(t *testing.T) map[string][]byte {
	t.Helper()
	f.addServerSecrets(t)
	out := map[string][]byte{}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(f.dbPath + suffix)
		if err == nil {
			out[f.dbPath+suffix] = b
		} else if !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if len(out[f.dbPath]) == 0 {
		t.Fatal("the database file is empty")
	}
	return out
}

// stop ends the gateway's clients and shuts the server down cleanly, so
// its last log lines and the checkpointed database are scanned too.
func (f *scannedFlow) stop(t *testing.T) {
	t.Helper()
	f.stopAgent()
	f.stopMender()
	if err := f.closeApp(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// checkCoverage makes sure the scan looked at what it should: a debug run
// in which every backend client and the agent logged their requests, and
// every echoing refusal happened and was logged, redacted.
func (f *scannedFlow) checkCoverage(t *testing.T) {
	t.Helper()
	log := f.serverLog.Bytes()
	for _, service := range []string{"mender", "dps", "iothub", "vault"} {
		if !bytes.Contains(log, []byte(`msg="backend request" service=`+service+` `)) {
			t.Errorf("the server logged no request to %s at debug level", service)
		}
		if fault := f.faults[service]; fault.count() != fault.want {
			t.Errorf("%s echoed %d of its %d refusals", service, fault.count(), fault.want)
		}
	}
	if n := bytes.Count(log, []byte(`: 400 Bad Request: credentials not accepted: `)); n < len(f.faults) {
		t.Errorf("%d refusals that echo credentials in the server log, want %d", n, len(f.faults))
	}
	if !bytes.Contains(log, []byte(`msg="webhook delivery failed"`)) {
		t.Error("the webhook receiver's echoing refusal was not logged")
	}
	if !bytes.Contains(f.agentLog.Bytes(), []byte(`level=DEBUG msg="server request" method=POST path=`)) {
		t.Error("the agent logged no request at debug level")
	}
}

// credRecorder wraps a simulator's API and records every credential sent
// to it: login tokens and JWTs, SAS tokens and their signatures, basic auth.
// It also plays a backend that echoes what it was sent in its error text,
// as proxies and validation errors do: echoes are how credentials and
// request secrets get into step reasons, and from there into logs, the
// database and the UI.
type credRecorder struct{ secrets *secretSet }

// echoFault refuses the first requests that match with a 400 whose message
// repeats, in turn, the credentials and the body of the request.
type echoFault struct {
	match func(*http.Request) bool
	want  int // refusals in all
	mu    sync.Mutex
	echo  []string // what the next refusals repeat: "credentials", "body"
	fired int
}

func (e *echoFault) next(r *http.Request) (string, bool) {
	if e == nil || !e.match(r) {
		return "", false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.echo) == 0 {
		return "", false
	}
	what := e.echo[0]
	e.echo = e.echo[1:]
	e.fired++
	return what, true
}

func (e *echoFault) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fired
}

func (c credRecorder) wrap(service string, fault *echoFault) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.record(service, r.Header)
			what, ok := fault.next(r)
			switch {
			case !ok:
				next.ServeHTTP(w, r)
			case what == "body":
				// Act on it, then refuse: the retry adopts what was made,
				// so the echoed secrets are the ones the gateway gets.
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(b))
				next.ServeHTTP(httptest.NewRecorder(), r)
				writeEcho(w, "invalid request "+string(b))
			default:
				writeEcho(w, "credentials not accepted: "+r.Header.Get("Authorization")+r.Header.Get("X-Vault-Token"))
			}
		})
	}
}

func writeEcho(w http.ResponseWriter, echo string) {
	writeEchoStatus(w, http.StatusBadRequest, echo)
}

func writeEchoStatus(w http.ResponseWriter, status int, echo string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": echo})
}

func (c credRecorder) record(service string, h http.Header) {
	if v := h.Get("X-Vault-Token"); v != "" {
		c.secrets.addString(service+" token sent (X-Vault-Token)", v)
	}
	v := h.Get("Authorization")
	if v == "" {
		return
	}
	scheme, cred, _ := strings.Cut(v, " ")
	c.secrets.addString(fmt.Sprintf("%s %s credential sent", service, scheme), cred)
	if q, err := url.ParseQuery(cred); err == nil && q.Get("sig") != "" {
		addBase64Secret(c.secrets, service+" SAS signature sent", q.Get("sig"))
	}
}

// addBase64Secret records a base64 secret and the bytes it stands for.
func addBase64Secret(s *secretSet, name, value string) {
	s.addString(name, value)
	if b, err := base64.StdEncoding.DecodeString(value); err == nil {
		s.addEntry(secretEntry{name: name, value: b, form: "decoded"})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
