package uitest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
	"gatehouse/provision"
)

// TestAuditPage: an admin's refused login and approval appear at the top of
// the Audit page with who and from where, older entries page in with
// "Older", and an operator has no Audit page.
func TestAuditPage(t *testing.T) {
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)
	admin, _, err := e.svc.CreateToken(e.ctx, provision.TokenSpec{Name: "root", Role: gatehouse.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	const seeded = 130 // more than one page of 100
	octx := gatehouse.WithOrigin(e.ctx, gatehouse.Origin{Actor: "local:seed", Source: "192.0.2.1"})
	for i := range seeded {
		if err := e.svc.Audit(octx, "user.create", fmt.Sprint("user-", i+1), nil, map[string]any{"role": "viewer"}); err != nil {
			t.Fatal(err)
		}
	}
	id := e.enrollAt(mac(1), "10.0.0.1", 0)

	b.openLogin(e.url)
	b.useToken()
	b.do("log in with a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "gat_not-a-real-token"),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)))
	b.wait("the refusal", `document.getElementById("token-error").textContent !== ""`)
	b.login(e.url, admin)
	b.wait("the Audit entry in the header", `!document.getElementById("nav-audit").hidden`)

	input := row(id) + ` input.name-input`
	b.do("approve", chromedp.SendKeys(chromedp.CSS(input), "gw-audit"),
		chromedp.Click(chromedp.CSS(row(id)+` button[data-action=accept]`)))
	b.wait("the row to leave pending", `!document.querySelector(`+js(row(id))+`)`)

	b.do("open Audit", chromedp.Click(chromedp.CSS(`a[data-nav=audit]`)))
	b.wait("the first page", `document.querySelectorAll(".grid-audit tbody tr").length === 100`)
	first := `document.querySelector(".grid-audit tbody tr")`
	if got := b.str(first + `.dataset.action`); got != "device.approve" {
		t.Fatalf("newest entry is %q, want device.approve", got)
	}
	text := b.str(first + `.innerText`)
	for _, want := range []string{":root", "127.0.0.1", "device.approve", id, "ok", "name: gw-audit"} {
		if !strings.Contains(text, want) {
			t.Errorf("the approval's row %q lacks %q", text, want)
		}
	}
	refused := `document.querySelector(".grid-audit tr[data-action='login.refused']")`
	if !b.bool(refused+` && `+refused+`.querySelector(".result-refused") !== null`) ||
		!strings.Contains(b.str(refused+`.innerText`), "anonymous") {
		t.Errorf("the refused login is not shown as refused: %q", b.pageText())
	}

	b.do("older", chromedp.Click(chromedp.CSS(`button[data-page=older]`)))
	// The seeded entries, the tokens the test made, the refused and the
	// good login and the approval: as many as the log's newest sequence.
	newest, err := e.svc.AuditLog(e.ctx, provision.AuditQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	total := int(newest.Entries[0].Seq)
	if total < seeded+4 {
		t.Fatalf("only %d entries in the log", total)
	}
	b.wait("every entry", fmt.Sprintf(`document.querySelectorAll(".grid-audit tbody tr").length === %d`, total))
	b.wait("the end", `document.querySelector("button[data-page=older]").hidden`)
	last := `[...document.querySelectorAll(".grid-audit tbody tr")].pop()`
	if seq := b.str(last + `.dataset.seq`); seq != "1" {
		t.Errorf("the last row is entry %s, want 1", seq)
	}
	if got := b.str(`document.querySelector(".toolbar .range").textContent`); got != fmt.Sprintf("%d entries shown, back to the first", total) {
		t.Errorf("count %q", got)
	}
	b.noProblems()

	// An operator sees no Audit entry, and the page says why when opened.
	b.do("log out", chromedp.Click(chromedp.ID("logout")))
	b.wait("the login page", `location.hash === "#/login" && !!document.getElementById("token")`)
	b.login(e.url, e.token)
	if !b.bool(`document.getElementById("nav-audit").hidden`) {
		t.Error("an operator is offered the Audit page")
	}
	b.do("open Audit by address", chromedp.Evaluate[chromedp.Void](`location.hash = "#/audit"`))
	b.wait("the refusal", `document.querySelector("main .lede").textContent.includes("is for the admin role")`)
	if n := b.str(`String(document.querySelectorAll(".grid-audit tbody tr").length)`); n != "0" {
		t.Errorf("an operator sees %s audit rows", n)
	}
	b.unlabelled()
}
