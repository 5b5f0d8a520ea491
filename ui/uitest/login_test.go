package uitest

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/server"
)

// user makes a local user straight in the database, as
// `gatehouse users create --db` does before any server runs.
func (e *env) user(name string, role gatehouse.Role, password string) {
	e.t.Helper()
	if _, err := provision.CreateUser(e.ctx, e.db, provision.UserSpec{Name: name, Role: role, Password: password}); err != nil {
		e.t.Fatalf("creating user %s: %v", name, err)
	}
}

// adminToken makes an admin API token and returns its secret.
func (e *env) adminToken(name string) string {
	e.t.Helper()
	secret, _, err := e.svc.CreateToken(e.ctx, provision.TokenSpec{Name: name, Role: gatehouse.RoleAdmin})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// bearer calls the REST API with an API token, as the CLI does, and returns
// the status.
func (e *env) bearer(method, path, token string) int {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// passwordWorks says whether the server lets name log in with password.
func (e *env) passwordWorks(name, password string) bool {
	_, _, err := e.svc.LoginPassword(e.ctx, name, password)
	return err == nil
}

// fakeSSO stands in for an identity provider: Begin sends the browser
// straight back to the callback, and Finish answers with whatever the test
// chose last.
type fakeSSO struct {
	mu   sync.Mutex
	id   provision.ExternalIdentity
	fail error
}

func (f *fakeSSO) Name() string { return "Test SSO" }

func (f *fakeSSO) Begin(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, server.PathSSOCallback+"?code=test", http.StatusSeeOther)
	return nil
}

func (f *fakeSSO) Finish(w http.ResponseWriter, r *http.Request) (provision.ExternalIdentity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id, f.fail
}

func (f *fakeSSO) answer(id provision.ExternalIdentity, fail error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.id, f.fail = id, fail
}

const (
	olgaPassword = "correct horse battery staple"
	rootPassword = "root password for tests"
)

// TestLogin is every way in: a user name and password (a wrong one refused
// with one message and no session), an API token, and single sign-on,
// whose failure comes back to the login page as text. Nobody below admin
// is offered Users or Tokens.
func TestLogin(t *testing.T) {
	b := newBrowser(t, 1280, 800)
	sso := &fakeSSO{}
	e := newEnv(t, func(s *server.Server) { s.SSO = sso })
	e.user("olga", gatehouse.RoleOperator, olgaPassword)
	viewer, _, err := e.svc.CreateToken(e.ctx, provision.TokenSpec{Name: "wall-screen", Role: gatehouse.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}

	b.openLogin(e.url)
	if got := b.str(`document.getElementById("user").autocomplete + " " + document.getElementById("password").autocomplete`); got != "username current-password" {
		t.Errorf("autocomplete of the user name and password = %q", got)
	}
	b.wait("the single sign-on button", `document.getElementById("sso-login").textContent === "Sign in with Test SSO"`)
	if href := b.str(`document.getElementById("sso-login").getAttribute("href")`); href != server.PathSSOLogin {
		t.Errorf("the SSO button links to %q, want %s", href, server.PathSSOLogin)
	}
	b.unlabelled()
	b.shot("login-sso.png")

	// A wrong password: one message, the password to type again, no session.
	b.do("a wrong password",
		chromedp.SendKeys(chromedp.ID("user"), "olga"),
		chromedp.SendKeys(chromedp.ID("password"), "not the password\r"))
	b.wait("the login error", `document.getElementById("login-error").textContent === "wrong user name or password"`)
	if !b.bool(`document.activeElement.id === "password" && document.activeElement.value === "" && document.getElementById("user").value === "olga"`) {
		t.Errorf("after a wrong password the cursor should be in the emptied password field, the name kept; focus on %s",
			b.str(`document.activeElement.id`))
	}
	var status int
	b.eval(`fetch("/api/v1/session").then(r => r.status)`, &status)
	if status != http.StatusUnauthorized || !b.bool(`document.getElementById("topbar").hidden`) {
		t.Errorf("after a wrong password: session %d, top bar shown %v", status, !b.bool(`document.getElementById("topbar").hidden`))
	}
	// An unknown user gets the very same answer.
	b.do("an unknown user",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("login-error").textContent = ""`),
		clear("#user"),
		chromedp.SendKeys(chromedp.ID("user"), "nobody"),
		chromedp.SendKeys(chromedp.ID("password"), "not the password\r"))
	b.wait("the same error", `document.getElementById("login-error").textContent === "wrong user name or password"`)

	// The right one.
	b.do("the right password",
		clear("#user"),
		chromedp.SendKeys(chromedp.ID("user"), "olga"),
		chromedp.SendKeys(chromedp.ID("password"), olgaPassword+"\r"))
	b.waitLoggedIn()
	if who := b.str(`document.getElementById("who").textContent`); who != "olga · operator" {
		t.Errorf("top bar says %q, want olga · operator", who)
	}
	if title := b.str(`document.getElementById("who").title`); !strings.Contains(title, "user") {
		t.Errorf("the name's title %q does not say it is a user", title)
	}
	if v := b.str(`document.cookie + location.href + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)`); strings.Contains(v, olgaPassword) {
		t.Errorf("the password is visible to the page after login: %q", v)
	}
	b.noAdminNav("an operator")
	b.do("open Users by address", chromedp.Navigate(e.url+"/#/users"))
	b.wait("the refusal", `document.querySelector("main").textContent.includes("for the admin role")`)
	b.do("log out", chromedp.Click(chromedp.ID("logout")))
	b.wait("the login page", `location.hash === "#/login" && !!document.getElementById("user")`)

	// An API token still logs in; a viewer sees no admin pages either.
	b.login(e.url, viewer)
	if who := b.str(`document.getElementById("who").textContent`); who != "wall-screen · viewer" {
		t.Errorf("top bar says %q, want wall-screen · viewer", who)
	}
	if title := b.str(`document.getElementById("who").title`); !strings.Contains(title, "API token") {
		t.Errorf("the name's title %q does not say it is a token", title)
	}
	b.noAdminNav("a viewer")
	b.do("log out", chromedp.Click(chromedp.ID("logout")))
	b.wait("the login page", `location.hash === "#/login" && !!document.getElementById("user")`)

	// Single sign-on that fails comes back with the reason, shown as text
	// however it looks.
	reason := `your groups <img src=x id=injected> give no role in gatehouse; ask an admin`
	sso.answer(provision.ExternalIdentity{}, gatehouse.Errorf(gatehouse.EFORBIDDEN, "%s", reason))
	b.follow("single sign-on, refused", chromedp.Click(chromedp.ID("sso-login")))
	b.wait("the reason on the login page", `document.getElementById("login-error").textContent === `+js("Single sign-on failed: "+reason))
	if b.bool(`!!document.getElementById("injected")`) {
		t.Error("the error in the address became markup")
	}
	if h := b.str(`location.hash`); h != "#/login" {
		t.Errorf("the address still holds the error after it was shown: %q", h)
	}
	// A link made by anyone shows the same way, labelled as what it is.
	b.do("a link with an error", chromedp.Navigate(e.url+"/#/login?error="+url.QueryEscape("<b>bold</b> claim")))
	b.wait("its text", `document.getElementById("login-error").textContent === "Single sign-on failed: <b>bold</b> claim"`)

	// Single sign-on that works: the person is made a user, with the role
	// their groups give.
	sso.answer(provision.ExternalIdentity{Issuer: "https://idp.test", Subject: "u-17", Name: "sam@example.test", Role: gatehouse.RoleViewer}, nil)
	b.follow("single sign-on", chromedp.Click(chromedp.ID("sso-login")))
	b.waitLoggedIn()
	if who := b.str(`document.getElementById("who").textContent`); who != "sam@example.test · viewer" {
		t.Errorf("after single sign-on the top bar says %q", who)
	}
	b.noAdminNav("a single sign-on viewer")
	b.noProblems()
}

// noAdminNav fails if the top bar offers Users or Tokens.
func (b *browser) noAdminNav(who string) {
	b.t.Helper()
	if !b.bool(`document.querySelector("a[data-nav=users]").hidden && document.querySelector("a[data-nav=tokens]").hidden`) {
		b.t.Errorf("%s is offered the Users or Tokens page", who)
	}
}
