package uitest

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"gatehouse"
	"gatehouse/provision"
)

// userRow is a CSS selector for the row of the user named name.
func userRow(name string) string { return `#main tr[data-name=` + js(name) + `]` }

// TestUsersPage is an admin's work with users: the list with local and
// single sign-on users, the last admin kept, a new user (a short password
// refused before sending, a generated one taken) who then logs in at
// another computer, a role change that applies to their open session, a new
// password, disabling (which ends their session), and deleting.
func TestUsersPage(t *testing.T) {
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)
	e.user("root", gatehouse.RoleAdmin, rootPassword)
	// Names are any printable text: this one must reach the API intact.
	odd := "ops team/berlin"
	e.user(odd, gatehouse.RoleViewer, rootPassword)
	if _, _, err := e.svc.LoginExternal(e.ctx, provision.ExternalIdentity{
		Issuer: "https://idp.test", Subject: "u-9", Name: "sam@example.test", Role: gatehouse.RoleViewer}); err != nil {
		t.Fatal(err)
	}

	b.loginPassword(e.url, "root", rootPassword)
	b.do("open Users", chromedp.Click(chromedp.CSS(`a[data-nav=users]`)))
	b.wait("the users", `!!document.querySelector(`+js(userRow("root"))+`) && !!document.querySelector(`+js(userRow("sam@example.test"))+`)`)
	sam := userRow("sam@example.test")
	if txt := b.str(`document.querySelector(` + js(sam) + `).textContent`); !strings.Contains(txt, "single sign-on") || !strings.Contains(txt, "from groups") {
		t.Errorf("the single sign-on user's row: %q", txt)
	}
	if b.bool(`!!document.querySelector(` + js(sam+" select") + `) || !!document.querySelector(` + js(sam+" button[data-action=password]") + `)`) {
		t.Error("a single sign-on user is offered a role picker or a password")
	}

	// The only admin cannot disable themselves: the reason shows in the row.
	b.do("disable myself", chromedp.Click(chromedp.CSS(userRow("root")+` button[data-action=disable]`)))
	b.wait("the question", `document.querySelector(`+js(userRow("root")+` .confirm-q`)+`).textContent.includes("your own account")`)
	b.do("confirm", chromedp.Click(chromedp.CSS(userRow("root")+` button[data-action=confirm]`)))
	b.wait("the refusal", `document.querySelector(`+js(userRow("root")+` .row-error`)+`).textContent.includes("no enabled admin")`)
	if !e.passwordWorks("root", rootPassword) {
		t.Fatal("the last admin was disabled")
	}

	// A new user: a short password is refused before anything is sent.
	b.do("new user", chromedp.Click(chromedp.ID("new-user")))
	b.wait("the form", `document.activeElement.id === "user-name"`)
	b.unlabelled()
	b.do("a short password",
		chromedp.SendKeys(chromedp.ID("user-name"), "bob"),
		chromedp.SendKeys(chromedp.ID("user-password"), "too-short"+kb.Enter))
	b.wait("the password error", `document.getElementById("user-create-error").textContent.includes("at least 12")`)
	if !b.bool(`document.activeElement.id === "user-password" && document.activeElement.getAttribute("aria-invalid") === "true"`) {
		t.Errorf("after a short password the focus is on %q", b.str(`document.activeElement.id`))
	}
	if us, err := e.svc.Users(e.ctx); err != nil || len(us) != 3 {
		t.Fatalf("after a refused password there are %d users (%v)", len(us), err)
	}
	b.do("generate one", clear("#user-password"),
		chromedp.Click(chromedp.CSS(`#user-create button[data-action=generate]`)))
	b.wait("a generated password, shown", `document.getElementById("user-password").value.length === 24 && document.getElementById("user-password").type === "text"`)
	password := b.str(`document.getElementById("user-password").value`)
	b.shot("user-new.png")
	b.do("create", chromedp.Click(chromedp.CSS(`#user-create button[type=submit]`)))
	bob := userRow("bob")
	b.wait("bob's row", `!!document.querySelector(`+js(bob+`[data-status=active][data-role=operator]`)+`)`)
	if b.bool(`document.getElementById("user-password").value !== ""`) {
		t.Error("the password stays in the closed form")
	}

	// Bob logs in at another computer.
	p := b.private()
	p.loginPassword(e.url, "bob", password)
	if who := p.str(`document.getElementById("who").textContent`); who != "bob · operator" {
		t.Errorf("bob's top bar says %q", who)
	}
	p.noAdminNav("bob, an operator")

	// A role change takes effect in his open session at once.
	b.do("pick viewer", chromedp.SetValue(chromedp.CSS(bob+" select"), "viewer"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+js(bob+" select")+`).dispatchEvent(new Event("change"))`))
	b.wait("the Save button", `!document.querySelector(`+js(bob+` button[data-action=save-role]`)+`).hidden`)
	b.do("save", chromedp.Click(chromedp.CSS(bob+` button[data-action=save-role]`)))
	b.wait("bob a viewer", `!!document.querySelector(`+js(bob+`[data-role=viewer]`)+`)`)
	if role := p.str(`fetch("/api/v1/session").then(r => r.json()).then(s => s.role)`); role != "viewer" {
		t.Errorf("bob's open session has the role %q after the change, want viewer", role)
	}

	// A new password, set by the admin.
	const newPassword = "bob's second password"
	b.do("set a password", chromedp.Click(chromedp.CSS(bob+` button[data-action=password]`)))
	b.wait("the password field", `document.activeElement.closest("form.pw-edit") !== null`)
	b.do("type it", chromedp.SendKeys(chromedp.CSS(bob+" form.pw-edit input"), newPassword+kb.Enter))
	b.wait("the toast", `document.getElementById("toasts").textContent.includes("New password set for bob")`)
	if !e.passwordWorks("bob", newPassword) || e.passwordWorks("bob", password) {
		t.Error("the new password does not work, or the old one still does")
	}

	// Disabling bob ends his open session: his page's next request finds it
	// gone and asks him to log in.
	b.do("disable bob", chromedp.Click(chromedp.CSS(bob+` button[data-action=disable]`)))
	b.wait("the question", `document.querySelector(`+js(bob+` .confirm-q`)+`).textContent.includes("Disable bob")`)
	if a := b.str(`document.activeElement.dataset.action || ""`); a != "cancel" {
		t.Errorf("focus on the disable question is on %q; Cancel is the safe default", a)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS(bob+` button[data-action=confirm]`)))
	b.wait("bob disabled", `!!document.querySelector(`+js(bob+`[data-status=disabled]`)+`)`)
	if a := b.str(`document.activeElement.dataset.action || ""`); a != "enable" {
		t.Errorf("after disabling the focus is on %q, want the row's Enable button", a)
	}
	b.shot("users.png")
	p.do("bob opens Devices", chromedp.Click(chromedp.CSS(`a[data-nav=devices]`)))
	p.wait("bob's login page", `location.hash === "#/login" && document.getElementById("toasts").textContent.includes("session has ended")`)
	if e.passwordWorks("bob", newPassword) {
		t.Error("a disabled user can log in")
	}
	b.do("enable bob", chromedp.Click(chromedp.CSS(bob+` button[data-action=enable]`)))
	b.wait("bob enabled", `!!document.querySelector(`+js(bob+`[data-status=active]`)+`)`)

	// Delete, through the confirmation that names him.
	b.do("delete bob", chromedp.Click(chromedp.CSS(bob+` button[data-action=delete]`)))
	b.wait("the question", `document.querySelector(`+js(bob+` .confirm-q`)+`).textContent.includes("bob")`)
	b.do("confirm", chromedp.Click(chromedp.CSS(bob+` button[data-action=confirm]`)))
	b.wait("bob gone", `!document.querySelector(`+js(bob)+`)`)
	if us, err := e.svc.Users(e.ctx); err != nil || len(us) != 3 {
		t.Errorf("after deleting bob there are %d users (%v)", len(us), err)
	}
	// The list is drawn again once the deletion is answered, and focus
	// moves to a neighbouring row then, so it is waited for, not read once.
	b.wait("focus on a neighbouring row after the delete", `document.activeElement.tagName === "TH"`)

	// An odd name goes through the API intact.
	b.do("disable "+odd, chromedp.Click(chromedp.CSS(userRow(odd)+` button[data-action=disable]`)))
	b.do("confirm", chromedp.Click(chromedp.CSS(userRow(odd)+` button[data-action=confirm]`)))
	b.wait(odd+" disabled", `!!document.querySelector(`+js(userRow(odd)+`[data-status=disabled]`)+`)`)
	if e.passwordWorks(odd, rootPassword) {
		t.Errorf("%q can still log in after being disabled on the page", odd)
	}
	b.unlabelled()
	b.do("a phone", chromedp.EmulateViewport(390, 844))
	b.wait("stacked rows", `getComputedStyle(document.querySelector("#main tbody tr")).display === "block"`)
	b.fitsWidth(390)
	b.shot("users-narrow.png")
	b.do("a wide screen again", chromedp.EmulateViewport(1360, 900))

	// With another admin about, root may step down to operator: the page
	// follows at once, without the admin pages.
	e.user("ada", gatehouse.RoleAdmin, rootPassword)
	root := userRow("root")
	b.do("pick operator for myself", chromedp.SetValue(chromedp.CSS(root+" select"), "operator"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+js(root+" select")+`).dispatchEvent(new Event("change"))`),
		chromedp.Click(chromedp.CSS(root+` button[data-action=save-role]`)))
	b.wait("the page for an operator", `document.getElementById("who").textContent === "root · operator" &&
		document.querySelector("main").textContent.includes("for the admin role")`)
	b.noAdminNav("root, now an operator")
	b.noProblems()
	p.noProblems()
}
