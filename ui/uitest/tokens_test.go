package uitest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// tokenRow is a CSS selector for the row of the token named name.
func tokenRow(name string) string { return `#main tr[data-name=` + js(name) + `]` }

// TestTokensPage is an admin's work with API tokens: the list, a new token
// whose secret is shown once and works against the REST API, a taken name
// refused, the last admin token kept, and Revoke, after which the secret
// stops working.
func TestTokensPage(t *testing.T) {
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)
	// The only way in as admin: revoking it must be refused.
	boot := e.adminToken("boot")

	b.login(e.url, boot)
	b.wait("the admin nav", `!document.querySelector("a[data-nav=tokens]").hidden && !document.querySelector("a[data-nav=users]").hidden`)
	b.do("open Tokens", chromedp.Click(chromedp.CSS(`a[data-nav=tokens]`)))
	b.wait("the tokens", `!!document.querySelector(`+js(tokenRow("alice")+`[data-status=live]`)+`) && !!document.querySelector(`+js(tokenRow("boot"))+`)`)
	if id := b.str(`document.activeElement.id`); id != "tokens-title" {
		t.Errorf("after opening Tokens the focus is on %q, want the heading", id)
	}
	if txt := b.str(`document.querySelector(` + js(tokenRow("boot")) + `).textContent`); !strings.Contains(txt, "you") || !strings.Contains(txt, "admin") {
		t.Errorf("the signed-in token's row should say it is yours: %q", txt)
	}

	// The last admin token cannot be revoked: the reason shows in its row.
	b.do("revoke boot", chromedp.Click(chromedp.CSS(tokenRow("boot")+` button[data-action=revoke]`)))
	b.wait("the question", `document.querySelector(`+js(tokenRow("boot")+` .confirm-q`)+`).textContent.includes("you will be logged out")`)
	b.do("confirm", chromedp.Click(chromedp.CSS(tokenRow("boot")+` button[data-action=confirm]`)))
	b.wait("the refusal", `document.querySelector(`+js(tokenRow("boot")+` .row-error`)+`).textContent.includes("no enabled admin")`)
	if s := e.bearer("GET", "/api/v1/tokens", boot); s != http.StatusOK {
		t.Errorf("the last admin token answers %d after a refused revoke", s)
	}

	// A new token: 90 days unless asked, here 30.
	b.do("new token", chromedp.Click(chromedp.ID("new-token")))
	b.wait("the form", `document.activeElement.id === "token-name"`)
	if v := b.str(`document.getElementById("token-life").value + " " + document.getElementById("token-role").value`); v != "90 operator" {
		t.Errorf("new token defaults: expiry and role %q, want 90 operator", v)
	}
	b.unlabelled()
	b.do("fill it in",
		chromedp.SendKeys(chromedp.ID("token-name"), "ci-deploy"),
		chromedp.SetValue(chromedp.ID("token-life"), "30"),
		chromedp.Click(chromedp.CSS(`#token-create button[type=submit]`)))
	b.wait("the secret", `document.getElementById("token-secret").value.startsWith("gat_")`)
	secret := b.str(`document.getElementById("token-secret").value`)
	if !b.bool(`document.activeElement.id === "token-secret" && document.getElementById("token-secret").readOnly`) {
		t.Errorf("the secret should be in a read-only field with the focus; focus on %q", b.str(`document.activeElement.id`))
	}
	if w := b.str(`document.getElementById("token-secret-panel").textContent`); !strings.Contains(w, "shown only once") {
		t.Errorf("no shown-once warning beside the secret: %q", w)
	}
	b.wait("the new row", `!!document.querySelector(`+js(tokenRow("ci-deploy")+`[data-status=live]`)+`)`)
	if txt := b.str(`document.querySelector(` + js(tokenRow("ci-deploy")) + `).textContent`); !strings.Contains(txt, "operator") || !strings.Contains(txt, "token:boot") || !strings.Contains(txt, "in 30 d") {
		t.Errorf("the new token's row lacks its role, maker or expiry: %q", txt)
	}
	if b.bool(`document.querySelector("table").textContent.includes(` + js(secret) + `) || document.title.includes(` + js(secret) + `) || location.href.includes(` + js(secret) + `)`) {
		t.Error("the secret shows outside its field")
	}
	b.shot("token-created.png")
	if s := e.bearer("GET", "/api/v1/devices", secret); s != http.StatusOK {
		t.Errorf("the new token on the REST API: %d, want 200", s)
	}
	ts, err := e.svc.Tokens(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if tk.Name != "ci-deploy" {
			continue
		}
		if tk.ExpiresAt == nil {
			t.Fatal("ci-deploy never expires; 30 days was chosen")
		}
		if left := time.Until(*tk.ExpiresAt); left < 29*24*time.Hour || left > 31*24*time.Hour {
			t.Errorf("ci-deploy expires in %v, want 30 days", left)
		}
	}
	b.do("copy", chromedp.Click(chromedp.CSS(`#token-secret-panel .secret-line button`)))
	b.wait("copied, or the fallback", `document.querySelector("#token-secret-panel .secret-line button").textContent === "Copied" ||
		document.getElementById("toasts").textContent.includes("clipboard is not available")`)
	b.do("done", chromedp.Click(chromedp.ID("token-secret-done")))
	b.wait("the secret gone", `document.getElementById("token-secret-panel").hidden && document.getElementById("token-secret").value === ""`)
	if id := b.str(`document.activeElement.id`); id != "new-token" {
		t.Errorf("after Done the focus is on %q, want the New token button", id)
	}
	if b.bool(`document.body.textContent.includes(` + js(secret) + `) || [...document.querySelectorAll("input")].some(i => i.value === ` + js(secret) + `)`) {
		t.Error("the secret is still on the page after Done")
	}

	// The same name again: refused beside the name, no secret.
	b.do("the same name",
		chromedp.Click(chromedp.ID("new-token")),
		chromedp.SendKeys(chromedp.ID("token-name"), "ci-deploy"+kb.Enter))
	b.wait("the name error", `document.getElementById("token-create-error").textContent.includes("exists already")`)
	if !b.bool(`document.activeElement.id === "token-name" && document.activeElement.getAttribute("aria-invalid") === "true" && document.getElementById("token-secret-panel").hidden`) {
		t.Errorf("a taken name should leave the cursor in the marked name field and show no secret; focus on %q", b.str(`document.activeElement.id`))
	}
	b.do("escape", chromedp.SendKeys(chromedp.ID("token-name"), kb.Escape))
	b.wait("the form closed", `document.getElementById("token-create").hidden && document.activeElement.id === "new-token"`)

	// Revoke, through the confirmation that names the token.
	b.do("revoke ci-deploy", chromedp.Click(chromedp.CSS(tokenRow("ci-deploy")+` button[data-action=revoke]`)))
	b.wait("the question", `document.querySelector(`+js(tokenRow("ci-deploy")+` .confirm-q`)+`).textContent.includes('"ci-deploy"')`)
	if a := b.str(`document.activeElement.dataset.action || ""`); a != "cancel" {
		t.Errorf("focus on the revoke question is on %q; Cancel is the safe default", a)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS(tokenRow("ci-deploy")+` button[data-action=confirm]`)))
	b.wait("revoked", `!!document.querySelector(`+js(tokenRow("ci-deploy")+`[data-status=revoked]`)+`)`)
	b.wait("the toast", `document.getElementById("toasts").textContent.includes('Token "ci-deploy" revoked')`)
	if s := e.bearer("GET", "/api/v1/devices", secret); s != http.StatusUnauthorized {
		t.Errorf("the revoked token on the REST API: %d, want 401", s)
	}
	if b.bool(`!document.querySelector(` + js(tokenRow("ci-deploy")+` button[data-action=revoke]`) + `).hidden`) {
		t.Error("a revoked token still offers Revoke")
	}
	b.shot("tokens.png")
	b.unlabelled()
	b.do("a phone", chromedp.EmulateViewport(390, 844))
	b.wait("stacked rows", `getComputedStyle(document.querySelector("#main tbody tr")).display === "block"`)
	b.fitsWidth(390)
	b.noProblems()
}
