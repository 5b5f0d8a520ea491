package sso_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/internal/logtest"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/sso"
	"gatehouse/sso/ssotest"
	"gatehouse/store"
)

// actionTimeout bounds each step of a test on its own, generous enough
// for a loaded machine.
const actionTimeout = 30 * time.Second

// Users at the test provider, and the groups gatehouse maps.
var (
	alice = ssotest.User{Subject: "u-alice", PreferredUsername: "alice", Email: "alice@example.com", Groups: []string{"staff", "gh-admins"}}
	bob   = ssotest.User{Subject: "u-bob", Email: "bob@example.com", Name: "Bob B", Groups: []string{"gh-operators"}}
	carol = ssotest.User{Subject: "u-carol", PreferredUsername: "carol", Groups: []string{"staff"}}
	roles = sso.RoleMap{Admin: []string{"gh-admins"}, Operator: []string{"gh-operators"}, Viewer: []string{"gh-viewers"}}
)

// rig is gatehouse's server with single sign-on at a real provider.
type rig struct {
	url  string
	idp  *ssotest.Provider
	svc  *provision.Service
	logs *logtest.Buffer
}

// startRig starts a provider and gatehouse; change may adjust the
// settings before discovery.
func startRig(t *testing.T, change func(*sso.Config)) *rig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	rg := &rig{url: base, idp: ssotest.Start(t, base+server.PathSSOCallback), logs: &logtest.Buffer{}}
	for _, u := range []ssotest.User{alice, bob, carol} {
		rg.idp.SetUser(u)
	}
	rg.idp.SignInAs(alice.Subject)
	cfg := sso.Config{Issuer: rg.idp.Issuer, ClientID: ssotest.ClientID, ClientSecret: ssotest.ClientSecret,
		RedirectURL: base + server.PathSSOCallback, Roles: roles, Scopes: []string{"groups"}}
	if change != nil {
		change(&cfg)
	}
	rg.svc = newService(t)
	log := slog.New(slog.NewTextHandler(rg.logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	key, err := rg.svc.SSOFlowKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, err := sso.New(ctx, cfg, sso.Options{Key: key, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(rg.svc)
	srv.SSO, srv.Logger = o, log
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if strings.Contains(rg.logs.String(), ssotest.ClientSecret) {
			t.Error("the client secret reached the log")
		}
	})
	return rg
}

func newService(t *testing.T) *provision.Service {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := provision.New(db, provision.Config{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// browser is an HTTP client with a cookie jar that follows redirects, as
// a browser would, and can stop at gatehouse's callback.
type browser struct {
	c      *http.Client
	jar    http.CookieJar
	stopAt string // a path not to follow a redirect to
	csrf   string
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{jar: jar}
	b.c = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		if b.stopAt != "" && req.URL.Path == b.stopAt {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// get fetches u, following redirects, and returns the last response's
// status and URL (with its fragment, which browsers keep client-side).
func (b *browser) get(t *testing.T, u string, header http.Header) (int, *url.URL, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Request.URL, resp
}

// signIn presses the SSO button and follows the flow to its end; it
// returns the error the login page is sent, "" when signed in.
func (b *browser) signIn(t *testing.T, rg *rig) string {
	t.Helper()
	_, end, _ := b.get(t, rg.url+server.PathSSOLogin, nil)
	return loginError(t, end)
}

// loginError reads the page gatehouse ended the flow on: the start page,
// or the login page with ?error= in its fragment.
func loginError(t *testing.T, end *url.URL) string {
	t.Helper()
	if end.Path != "/" {
		t.Fatalf("flow ended at %s, not on gatehouse's page", end)
	}
	frag, ok := strings.CutPrefix(end.EscapedFragment(), "/login?")
	if !ok {
		if end.Fragment != "" {
			t.Fatalf("flow ended at fragment %q", end.Fragment)
		}
		return ""
	}
	q, err := url.ParseQuery(frag)
	if err != nil || q.Get("error") == "" {
		t.Fatalf("login page fragment %q has no error", end.Fragment)
	}
	return q.Get("error")
}

// call sends an API request with the browser's cookies and decodes the
// JSON answer into out.
func (b *browser) call(t *testing.T, method, u string, header map[string]string, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, u, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type sessionInfo struct {
	CSRF string         `json:"csrf_token"`
	Kind string         `json:"kind"`
	Name string         `json:"name"`
	Role gatehouse.Role `json:"role"`
}

func (b *browser) session(t *testing.T, rg *rig) (int, sessionInfo) {
	t.Helper()
	var s sessionInfo
	code := b.call(t, "GET", rg.url+"/api/v1/session", nil, &s)
	b.csrf = s.CSRF
	return code, s
}

// enroll makes a pending gateway through the signed device API.
func enroll(t *testing.T, rg *rig) string {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	sk, err := protocol.DeriveSealKey(key)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(protocol.EnrollRequest{MAC: "02:00:00:00:00:07", SealKey: sk.PublicKey().Bytes()})
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", rg.url+protocol.PathEnroll, bytes.NewReader(body))
	if err := protocol.SignRequest(req, body, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st protocol.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("enroll: %d %v", resp.StatusCode, err)
	}
	return st.DeviceID
}

func TestSignInEndToEnd(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	b := newBrowser()
	if msg := b.signIn(t, rg); msg != "" {
		t.Fatalf("sign-in refused: %s", msg)
	}
	code, s := b.session(t, rg)
	if code != 200 || s.Kind != "user" || s.Name != "alice" || s.Role != gatehouse.RoleAdmin || s.CSRF == "" {
		t.Fatalf("session after sign-in: %d %+v", code, s)
	}
	reqs := rg.idp.Requests()
	if len(reqs) != 1 {
		t.Fatalf("provider saw %d authorization requests", len(reqs))
	}
	r := reqs[0]
	if r.CodeChallengeMethod != "S256" || r.Nonce == "" || r.ClientID != ssotest.ClientID || r.RedirectURI != rg.url+server.PathSSOCallback {
		t.Errorf("authorization request: %+v", r)
	}
	if want := []string{"openid", "profile", "email", "groups"}; !slices.Equal(r.Scopes, want) {
		t.Errorf("scopes %v, want %v", r.Scopes, want)
	}
	cb, _ := url.Parse(rg.url + server.PathSSOCallback)
	for _, c := range b.jar.Cookies(cb) {
		if c.Name == "gatehouse_sso" {
			t.Error("the flow cookie is still there after the sign-in")
		}
	}

	users, err := rg.svc.Users(context.Background())
	if err != nil || len(users) != 1 || users[0].Name != "alice" || users[0].Source != gatehouse.SourceOIDC || users[0].Role != gatehouse.RoleAdmin {
		t.Fatalf("users after sign-in: %+v, %v", users, err)
	}
}

func TestFlowCookie(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	b := newBrowser()
	b.stopAt = "/authorize"
	code, _, resp := b.get(t, rg.url+server.PathSSOLogin, nil)
	if code != http.StatusFound {
		t.Fatalf("login = %d", code)
	}
	to, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(to.String(), rg.idp.Issuer) || to.Query().Get("state") == "" || to.Query().Get("code_challenge") == "" {
		t.Fatalf("login sends the browser to %s", to)
	}
	var flow *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "gatehouse_sso" {
			flow = c
		}
	}
	if flow == nil || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.Path != server.PathSSOCallback ||
		flow.MaxAge != int(sso.FlowTTL/time.Second) || flow.Secure {
		t.Fatalf("flow cookie: %+v", flow)
	}
	for _, secret := range []string{to.Query().Get("state"), to.Query().Get("nonce")} {
		if strings.Contains(flow.Value, secret) {
			t.Fatal("the flow cookie shows the flow's secrets in clear")
		}
	}
	_, _, resp = b.get(t, rg.url+server.PathSSOLogin, http.Header{"X-Forwarded-Proto": {"https"}})
	if c := resp.Cookies(); len(c) != 1 || !c[0].Secure {
		t.Fatalf("behind a TLS proxy the flow cookie is not Secure: %+v", c)
	}
}

func TestOperatorWorksWithTheSession(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	rg.idp.SignInAs(bob.Subject)
	b := newBrowser()
	if msg := b.signIn(t, rg); msg != "" {
		t.Fatalf("sign-in refused: %s", msg)
	}
	_, s := b.session(t, rg)
	if s.Name != "bob@example.com" || s.Role != gatehouse.RoleOperator {
		t.Fatalf("bob's session: %+v", s)
	}
	id := enroll(t, rg)
	dismiss := rg.url + "/api/v1/devices/" + id + "/dismiss"
	if code := b.call(t, "POST", dismiss, nil, nil); code != 403 {
		t.Fatalf("dismiss without the CSRF header = %d", code)
	}
	if code := b.call(t, "POST", rg.url+"/api/v1/tokens", map[string]string{"X-CSRF-Token": b.csrf}, nil); code != 403 {
		t.Fatalf("an operator creating a token = %d", code)
	}
	if code := b.call(t, "POST", dismiss, map[string]string{"X-CSRF-Token": b.csrf}, nil); code != 200 {
		t.Fatalf("dismiss with the session = %d", code)
	}
}

func TestRoleFollowsGroupsAtEachLogin(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	rg.idp.SignInAs(bob.Subject)
	if msg := newBrowser().signIn(t, rg); msg != "" {
		t.Fatalf("first sign-in refused: %s", msg)
	}
	promoted := bob
	promoted.Groups = []string{"gh-viewers", "gh-admins"}
	rg.idp.SetUser(promoted)
	b := newBrowser()
	if msg := b.signIn(t, rg); msg != "" {
		t.Fatalf("second sign-in refused: %s", msg)
	}
	if _, s := b.session(t, rg); s.Role != gatehouse.RoleAdmin || s.Name != "bob@example.com" {
		t.Fatalf("after promotion: %+v", s)
	}
	users, _ := rg.svc.Users(context.Background())
	if len(users) != 1 || users[0].Role != gatehouse.RoleAdmin {
		t.Fatalf("one user, now admin, expected: %+v", users)
	}

	demoted := bob
	demoted.Groups = []string{"gh-viewers"}
	rg.idp.SetUser(demoted)
	again := newBrowser()
	again.signIn(t, rg)
	if _, s := again.session(t, rg); s.Role != gatehouse.RoleViewer {
		t.Fatalf("after demotion: %+v", s)
	}
	// The role is the user's: the session from before is a viewer's now.
	if _, s := b.session(t, rg); s.Role != gatehouse.RoleViewer {
		t.Fatalf("the earlier session after demotion: %+v", s)
	}
}

func TestNoMappedGroupIsRefused(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	rg.idp.SignInAs(carol.Subject)
	b := newBrowser()
	msg := b.signIn(t, rg)
	if !strings.Contains(msg, "none of your groups") {
		t.Fatalf("carol's sign-in: %q", msg)
	}
	if code, _ := b.session(t, rg); code != 401 {
		t.Fatalf("session after a refused sign-in = %d", code)
	}
	if users, _ := rg.svc.Users(context.Background()); len(users) != 0 {
		t.Fatalf("a refused sign-in made users: %+v", users)
	}
	if !strings.Contains(rg.logs.String(), "staff") {
		t.Error("the log does not say which groups carol has, for the admin to map")
	}
}

func TestMissingGroupsClaimIsRefused(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	nobody := ssotest.User{Subject: "u-dave", PreferredUsername: "dave"}
	rg.idp.SetUser(nobody)
	rg.idp.SignInAs(nobody.Subject)
	if msg := newBrowser().signIn(t, rg); !strings.Contains(msg, `no "groups" claim`) {
		t.Fatalf("sign-in without a groups claim: %q", msg)
	}
}

func TestGroupsClaimShapes(t *testing.T) {
	t.Parallel()
	rg := startRig(t, func(c *sso.Config) { c.GroupsClaim = "roles" })
	rg.idp.GroupsClaim("roles")
	for _, tc := range []struct {
		groups any
		want   gatehouse.Role
	}{
		{"gh-operators", gatehouse.RoleOperator},
		{[]string{"gh-viewers"}, gatehouse.RoleViewer},
		{map[string]any{"gh-admins": map[string]string{"org": "example"}}, gatehouse.RoleAdmin},
	} {
		u := ssotest.User{Subject: "u-erin", PreferredUsername: "erin", Groups: tc.groups}
		rg.idp.SetUser(u)
		rg.idp.SignInAs(u.Subject)
		b := newBrowser()
		if msg := b.signIn(t, rg); msg != "" {
			t.Fatalf("groups %v: %s", tc.groups, msg)
		}
		if _, s := b.session(t, rg); s.Role != tc.want {
			t.Errorf("groups %v: role %s, want %s", tc.groups, s.Role, tc.want)
		}
	}
	u := ssotest.User{Subject: "u-erin", PreferredUsername: "erin", Groups: 42}
	rg.idp.SetUser(u)
	if msg := newBrowser().signIn(t, rg); !strings.Contains(msg, "not a list of group names") {
		t.Fatalf("a numeric groups claim: %q", msg)
	}
}

func TestGroupsFromUserinfo(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	rg.idp.GroupsOnlyInUserinfo()
	rg.idp.SignInAs(bob.Subject)
	b := newBrowser()
	if msg := b.signIn(t, rg); msg != "" {
		t.Fatalf("sign-in refused: %s", msg)
	}
	if _, s := b.session(t, rg); s.Role != gatehouse.RoleOperator {
		t.Fatalf("groups from userinfo: %+v", s)
	}
}

func TestProviderErrorIsShown(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	rg.idp.Deny("The user cancelled the login")
	b := newBrowser()
	msg := b.signIn(t, rg)
	if !strings.Contains(msg, "access_denied") || !strings.Contains(msg, "The user cancelled the login") {
		t.Fatalf("denied sign-in: %q", msg)
	}
	if code, _ := b.session(t, rg); code != 401 {
		t.Fatalf("session after a denied sign-in = %d", code)
	}
}

// atCallback runs a flow up to the provider's redirect back and returns
// the callback URL the browser was sent to, not yet visited.
func atCallback(t *testing.T, rg *rig, b *browser) *url.URL {
	t.Helper()
	b.stopAt = server.PathSSOCallback
	defer func() { b.stopAt = "" }()
	code, _, resp := b.get(t, rg.url+server.PathSSOLogin, nil)
	if code != http.StatusFound {
		t.Fatalf("flow stopped with %d before the callback", code)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Path != server.PathSSOCallback {
		t.Fatalf("provider redirects to %q", resp.Header.Get("Location"))
	}
	return u
}

func TestTamperedOrMissingStateIsRefused(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	const noFlow, notOurs = "no sign-in was started in this browser", "does not belong to the sign-in"

	b := newBrowser()
	cb := atCallback(t, rg, b)
	forged := *cb
	q := forged.Query()
	q.Set("state", q.Get("state")+"x")
	forged.RawQuery = q.Encode()
	if _, end, _ := b.get(t, forged.String(), nil); !strings.Contains(loginError(t, end), notOurs) {
		t.Fatalf("tampered state: %q", loginError(t, end))
	}
	// The refused answer used the flow up: the genuine one is refused too.
	if _, end, _ := b.get(t, cb.String(), nil); !strings.Contains(loginError(t, end), noFlow) {
		t.Fatalf("after a refused answer: %q", loginError(t, end))
	}

	q = cb.Query()
	q.Del("state")
	missing := *cb
	missing.RawQuery = q.Encode()
	b = newBrowser()
	atCallback(t, rg, b)
	if _, end, _ := b.get(t, missing.String(), nil); !strings.Contains(loginError(t, end), notOurs) {
		t.Fatalf("missing state: %q", loginError(t, end))
	}

	b = newBrowser()
	mixedUp := atCallback(t, rg, b)
	q = mixedUp.Query()
	q.Set("iss", "https://idp.evil.example")
	mixedUp.RawQuery = q.Encode()
	if _, end, _ := b.get(t, mixedUp.String(), nil); !strings.Contains(loginError(t, end), "another identity provider") {
		t.Fatalf("answer naming another issuer: %q", loginError(t, end))
	}

	// Another browser cannot finish this browser's sign-in (login CSRF),
	// and trying does not spoil it for the one that started it.
	started, other := newBrowser(), newBrowser()
	cb = atCallback(t, rg, started)
	if _, end, _ := other.get(t, cb.String(), nil); !strings.Contains(loginError(t, end), noFlow) {
		t.Fatalf("callback in another browser: %q", loginError(t, end))
	}
	if code, _ := other.session(t, rg); code != 401 {
		t.Fatalf("the other browser has a session: %d", code)
	}
	if _, end, _ := started.get(t, cb.String(), nil); loginError(t, end) != "" {
		t.Fatalf("the browser that started it: %q", loginError(t, end))
	}
}

func TestFlowCannotBeReplayed(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	b := newBrowser()
	cb := atCallback(t, rg, b)
	cbURL, _ := url.Parse(rg.url + server.PathSSOCallback)
	var flow string
	for _, c := range b.jar.Cookies(cbURL) {
		if c.Name == "gatehouse_sso" {
			flow = c.Value
		}
	}
	if flow == "" {
		t.Fatal("no flow cookie before the callback")
	}
	if _, end, _ := b.get(t, cb.String(), nil); loginError(t, end) != "" {
		t.Fatalf("sign-in refused: %s", loginError(t, end))
	}
	// The same answer with a copy of the flow cookie, in a fresh browser.
	replay := newBrowser()
	cookie := http.Header{"Cookie": {"gatehouse_sso=" + flow}}
	if _, end, _ := replay.get(t, cb.String(), cookie); !strings.Contains(loginError(t, end), "already used") {
		t.Fatalf("replayed callback: %q", loginError(t, end))
	}
	if code, _ := replay.session(t, rg); code != 401 {
		t.Fatalf("the replay got a session: %d", code)
	}

	tampered := []byte(flow)
	tampered[len(tampered)/2] ^= 1
	cookie = http.Header{"Cookie": {"gatehouse_sso=" + string(tampered)}}
	b = newBrowser()
	cb = atCallback(t, rg, b)
	if _, end, _ := newBrowser().get(t, cb.String(), cookie); !strings.Contains(loginError(t, end), "no sign-in was started") {
		t.Fatalf("tampered flow cookie: %q", loginError(t, end))
	}
}

func TestBadIDTokensAreRefused(t *testing.T) {
	t.Parallel()
	rg := startRig(t, nil)
	for _, tc := range []struct {
		name       string
		change     func(map[string]any)
		foreignKey bool
		want       string
	}{
		{name: "wrong nonce", change: func(c map[string]any) { c["nonce"] = "someone-elses-nonce" }, want: "wrong nonce"},
		{name: "no nonce", change: func(c map[string]any) { delete(c, "nonce") }, want: "wrong nonce"},
		{name: "wrong audience", change: func(c map[string]any) { c["aud"], c["azp"] = []string{"another-app"}, "another-app" }, want: "expected audience"},
		{name: "another party", change: func(c map[string]any) { c["aud"], c["azp"] = []string{ssotest.ClientID, "another-app"}, "another-app" }, want: "issued to another client"},
		{name: "wrong issuer", change: func(c map[string]any) { c["iss"] = "https://idp.evil.example" }, want: "different provider"},
		{name: "expired", change: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, want: "expired"},
		{name: "foreign key", change: func(map[string]any) {}, foreignKey: true, want: "signature"},
	} {
		rg.idp.RewriteIDToken(tc.change, tc.foreignKey)
		b := newBrowser()
		msg := b.signIn(t, rg)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q", tc.name, msg)
		}
		if code, _ := b.session(t, rg); code != 401 {
			t.Errorf("%s: session %d", tc.name, code)
		}
	}
	if users, _ := rg.svc.Users(context.Background()); len(users) != 0 {
		t.Fatalf("refused tokens made users: %+v", users)
	}
	rg.idp.RewriteIDToken(nil, false)
	if msg := newBrowser().signIn(t, rg); msg != "" {
		t.Fatalf("a good token after the bad ones: %s", msg)
	}
}

func TestDiscoveryErrors(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	cfg := func(issuer string) sso.Config {
		return sso.Config{Issuer: issuer, ClientID: "gatehouse", ClientSecret: ssotest.ClientSecret,
			RedirectURL: "https://gatehouse.example.com" + server.PathSSOCallback, Roles: roles, Timeout: actionTimeout}
	}
	idp := ssotest.Start(t, "https://gatehouse.example.com"+server.PathSSOCallback)
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	stop := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(stop)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	slow := cfg(hanging.URL)
	slow.Timeout = 100 * time.Millisecond
	for name, tc := range map[string]struct {
		cfg  sso.Config
		want string
	}{
		"unreachable":    {cfg(closed.URL), "connection refused"},
		"not a provider": {cfg(notFound.URL), "404"},
		"wrong issuer":   {cfg(idp.Issuer + "/realms/x"), "404"},
		"issuer differs": {cfg(idp.Issuer + "/"), "did not match"},
		"no answer":      {slow, "no answer within 100ms"},
		"invalid":        {cfg("ftp://x"), "Issuer must be an https:// URL"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
		_, err := sso.New(ctx, tc.cfg, sso.Options{Key: key})
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), ssotest.ClientSecret) {
			t.Errorf("%s: the error shows the client secret", name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), actionTimeout)
	defer cancel()
	if _, err := sso.New(ctx, cfg(idp.Issuer), sso.Options{Key: key[:16]}); err == nil {
		t.Error("a short flow key was accepted")
	}
	o, err := sso.New(ctx, cfg(idp.Issuer), sso.Options{Key: key})
	if err != nil || o.Name() != sso.DefaultName {
		t.Fatalf("good provider: %v", err)
	}
}

func TestWrongClientSecretIsReported(t *testing.T) {
	t.Parallel()
	const wrong = "not-the-client-secret-0123456789"
	rg := startRig(t, func(c *sso.Config) { c.ClientSecret = wrong })
	b := newBrowser()
	msg := b.signIn(t, rg)
	if !strings.Contains(msg, "refused to finish the sign-in") || strings.Contains(msg, wrong) {
		t.Fatalf("sign-in with a wrong client secret: %q", msg)
	}
	if code, _ := b.session(t, rg); code != 401 {
		t.Fatalf("session = %d", code)
	}
	if strings.Contains(rg.logs.String(), wrong) {
		t.Fatal("the client secret reached the log")
	}
}
