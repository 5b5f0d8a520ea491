package uitest

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"gatehouse"
)

// TestOperatorFlow is the operator's day: log in, see the pending gateways
// with their verification codes, be refused a taken name, approve with a
// free one and watch the gateway provision without reloading, dismiss
// another, and read the device page.
func TestOperatorFlow(t *testing.T) {
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)

	// A gateway already named gw-taken, and three new ones waiting.
	e.gateway(mac(0xa0), false)
	taken := e.pending(1)[mac(0xa0)]
	e.approve(taken.ID, "gw-taken")
	e.waitAgent(mac(0xa0))
	for i := 1; i <= 3; i++ {
		e.gateway(mac(i), i%2 == 0)
	}
	pending := e.pending(3)

	b.login(e.url, e.token)
	b.wait("three pending rows", `document.querySelectorAll("tr[data-id]").length === 3`)
	if v := b.str(`document.cookie + location.href + JSON.stringify(localStorage) + JSON.stringify(sessionStorage)`); strings.Contains(v, e.token) {
		t.Errorf("the API token is visible to the page after login: %q", v)
	}
	for m, d := range pending {
		want := d.VerificationCode[:3] + " " + d.VerificationCode[3:]
		got := b.str(`document.querySelector(` + js(row(d.ID)+" .vcode") + `).textContent`)
		if got != want {
			t.Errorf("%s: code %q on the page, want %q", m, got, want)
		}
	}
	b.wait("the count in the header", `document.getElementById("pending-count").textContent === "3"`)

	target, other := pending[mac(1)], pending[mac(2)]
	input := row(target.ID) + ` input.name-input`

	// A taken name: the error shows in that row, the name stays typed, the
	// cursor goes back to it, and nothing changes on the server.
	b.do("approve with a taken name",
		chromedp.SendKeys(chromedp.CSS(input), "gw-taken"+kb.Enter))
	b.wait("the error in the row", `document.querySelector(`+js(row(target.ID)+" .row-error")+`).textContent.includes("gw-taken")`)
	if v := b.str(`document.querySelector(` + js(input) + `).value`); v != "gw-taken" {
		t.Errorf("typed name after the error = %q", v)
	}
	if id := b.str(`document.activeElement.closest("tr") ? document.activeElement.closest("tr").dataset.id : ""`); id != target.ID {
		t.Errorf("focus after the error is in row %q, want %q", id, target.ID)
	}
	if d := e.device(target.ID); d.State != gatehouse.StatePending || d.Name != "" {
		t.Errorf("after a refused approval the device is %s %q", d.State, d.Name)
	}

	// A live refresh must not wipe what another row's operator is typing.
	otherInput := row(other.ID) + ` input.name-input`
	b.do("type in another row", chromedp.SendKeys(chromedp.CSS(otherInput), "gw-draft"))
	e.gateway(mac(4), false)
	b.wait("the new gateway, live", `document.querySelectorAll("tr[data-id]").length === 4`)
	if v := b.str(`document.querySelector(` + js(otherInput) + `).value`); v != "gw-draft" {
		t.Errorf("a live refresh changed a typed name to %q", v)
	}
	if v := b.str(`document.activeElement.value || ""`); v != "gw-draft" {
		t.Errorf("a live refresh moved the focus (now on a field holding %q)", v)
	}

	// Vault fails for a while, so the new gateway is seen failing and then
	// recovering, live.
	e.sims.Vault.Faults.SetFailRate(1)
	b.do("approve with a free name",
		clear(input),
		chromedp.SendKeys(chromedp.CSS(input), "gw-new"),
		chromedp.Click(chromedp.CSS(row(target.ID)+` button[data-action=accept]`)))
	b.wait("the row to leave pending", `!document.querySelector(`+js(row(target.ID))+`)`)
	b.wait("the toast", `[...document.querySelectorAll("#toasts .toast span")].some(s => s.textContent === "gw-new approved")`)
	if !b.bool(`document.activeElement.classList.contains("name-input")`) {
		t.Errorf("after an approval the focus should move to the next gateway's name box, not to %s",
			b.str(`document.activeElement.outerHTML.slice(0, 200)`))
	}

	b.do("open Devices", chromedp.Click(chromedp.CSS(`a[data-nav=devices]`)))
	b.wait("gw-new failing at vault", `(r => r && r.dataset.state === "failed")(document.querySelector(`+js(row(target.ID))+`))`)
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	e.sims.Vault.Faults.SetFailRate(0)
	b.wait("gw-new provisioned without reload",
		`(r => r && ["provisioned", "configured"].includes(r.dataset.state))(document.querySelector(`+js(row(target.ID))+`))`)
	if name := b.str(`document.querySelector(` + js(row(target.ID)+" .cell-name a") + `).textContent`); name != "gw-new" {
		t.Errorf("the devices row shows the name %q, want gw-new", name)
	}
	if d := e.device(target.ID); d.Name != "gw-new" {
		t.Errorf("approved as %q, want gw-new", d.Name)
	}
	if !b.bool(`window.__sameDocument === true`) {
		t.Error("the page reloaded; live updates should arrive over the event stream")
	}

	// Dismiss, through the inline confirmation.
	b.do("back to Pending", chromedp.Click(chromedp.CSS(`a[data-nav=pending]`)))
	b.wait("pending rows", `!!document.querySelector(`+js(row(other.ID))+`)`)
	dismissed := pending[mac(3)]
	b.do("dismiss", chromedp.Click(chromedp.CSS(row(dismissed.ID)+` button[data-action=dismiss]`)))
	b.wait("the confirmation", `!!document.querySelector(`+js(row(dismissed.ID)+` button[data-action=confirm-dismiss]`)+`).offsetParent`)
	if a := b.str(`document.activeElement.dataset.action || ""`); a != "cancel-dismiss" {
		t.Errorf("focus on the dismiss question is on %q; Cancel is the safe default", a)
	}
	b.do("confirm", chromedp.Click(chromedp.CSS(row(dismissed.ID)+` button[data-action=confirm-dismiss]`)))
	b.wait("the dismissed row to go", `!document.querySelector(`+js(row(dismissed.ID))+`)`)
	if !b.bool(`document.activeElement.classList.contains("name-input")`) {
		t.Errorf("after a dismissal the focus should move to the next gateway's name box, not to %s",
			b.str(`document.activeElement.outerHTML.slice(0, 200)`))
	}
	if d := e.device(dismissed.ID); d.State != gatehouse.StateDismissed {
		t.Errorf("dismissed gateway is %s", d.State)
	}

	// The device page: fields, every step and the timeline.
	b.do("open gw-new", chromedp.Navigate(e.url+"/#/devices/"+target.ID))
	b.wait("the steps", `document.querySelectorAll(".grid-steps tbody tr").length >= 3`)
	b.wait("vault done", `document.querySelector('.grid-steps tr[data-step="vault"]').dataset.state === "succeeded"`)
	text := b.pageText()
	for _, want := range []string{"gw-new", target.MAC, target.Fingerprint, "mender", "dps", "vault", "Enrolled", "Approved", "Step failed", "by token:alice"} {
		if !strings.Contains(text, want) {
			t.Errorf("device page lacks %q", want)
		}
	}
	b.noProblems()
}
