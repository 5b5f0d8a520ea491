package uitest

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse"
)

// fleet is a realistic morning: gateways waiting (some silent for hours),
// one configured, one provisioned and waiting for IoT Hub, one failing at
// Vault and one dismissed.
type fleet struct {
	*env
	configured, provisioned, failed, dismissed string // device ids
	silent                                     []string
	active                                     map[string]*gatehouse.Device
}

var activeMACs = []string{"00:07:32:4a:91:0c", "b8:27:eb:5c:12:8e", "00:90:e8:7b:22:41", "d8:3a:dd:19:f4:6a", "00:0d:b9:5e:3a:c1"}

func newFleet(t *testing.T, e *env) *fleet {
	t.Helper()
	f := &fleet{env: e}
	// Silent ones first, while nothing else writes: they need an old clock.
	f.silent = []string{
		e.enrollAt("00:07:32:4a:77:e2", "10.20.7.31", 26*time.Hour),
		e.enrollAt("b8:27:eb:01:9c:4d", "10.20.3.12", 3*time.Hour+10*time.Minute),
		e.enrollAt("00:90:e8:61:0a:13", "10.20.5.44", 14*time.Minute),
	}
	for i, m := range []string{"00:0d:b9:48:11:20", "00:0d:b9:48:11:21", "00:0d:b9:48:11:22", "00:0d:b9:48:11:23"} {
		e.gateway(m, i%2 == 1)
	}
	byMAC := e.pending(7)
	f.configured, f.provisioned = byMAC["00:0d:b9:48:11:20"].ID, byMAC["00:0d:b9:48:11:21"].ID
	f.failed, f.dismissed = byMAC["00:0d:b9:48:11:22"].ID, byMAC["00:0d:b9:48:11:23"].ID
	e.approve(f.configured, "berlin-gw-01")
	e.approve(f.provisioned, "berlin-gw-02")
	e.waitAgent("00:0d:b9:48:11:20")
	e.waitAgent("00:0d:b9:48:11:21")
	e.registerEdge("00:0d:b9:48:11:20")
	e.waitState(f.configured, gatehouse.StateConfigured)
	e.sims.Vault.Faults.SetFailRate(1)
	e.approve(f.failed, "hamburg-gw-07")
	e.waitState(f.failed, gatehouse.StateFailed)
	if _, err := e.svc.Dismiss(e.ctx, "token:alice", f.dismissed); err != nil {
		t.Fatal(err)
	}
	// A name someone already used in DPS by hand, outside gatehouse.
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if _, err := e.sims.DPS.State.CreateEnrollment(e.ctx, gatehouse.Enrollment{RegistrationID: "munich-gw-09",
		DeviceID: "munich-gw-09", PrimaryKey: key, SecondaryKey: key}); err != nil {
		t.Fatal(err)
	}
	for i, m := range activeMACs {
		e.gateway(m, i%2 == 0)
	}
	all := e.pending(8)
	f.active = map[string]*gatehouse.Device{}
	for _, m := range activeMACs {
		f.active[m] = all[m]
	}
	return f
}

// TestFleetViews checks the views against a realistic fleet, and takes the
// screenshots for the README.
func TestFleetViews(t *testing.T) {
	b := newBrowser(t, 1360, 860)
	f := newFleet(t, newEnv(t))

	b.openLogin(f.url)
	b.shot("login.png")
	b.useToken()
	b.do("wrong token", chromedp.SendKeys(chromedp.ID("token"), "gat_wrong\r"))
	b.wait("the login error", `document.getElementById("token-error").textContent.length > 0`)
	b.do("clear", clear("#token"))
	b.login(f.url, f.token)

	b.wait("eight pending rows", `document.querySelectorAll("tr[data-id]").length === 8`)
	b.wait("the live stream", `document.getElementById("live").dataset.state === "live"`)
	for _, id := range f.silent {
		if cls := b.str(`document.querySelector(` + js(row(id)) + `).className`); !strings.Contains(cls, "is-silent") {
			t.Errorf("silent gateway %s is not marked silent (class %q)", id, cls)
		}
	}
	badge := b.str(`document.querySelector(` + js(row(f.silent[1])+" .badge-silent") + `).textContent`)
	if badge != "silent 3 h" {
		t.Errorf("badge of a gateway silent for 3 h 10 min = %q", badge)
	}
	fp := f.active[activeMACs[0]].Fingerprint
	if title := b.str(`document.querySelector(` + js(row(f.active[activeMACs[0]].ID)+" .fp") + `).title`); !strings.Contains(title, fp) {
		t.Errorf("fingerprint title %q lacks the full fingerprint", title)
	}
	b.do("a draft name", chromedp.SendKeys(chromedp.CSS(row(f.active[activeMACs[1]].ID)+" input.name-input"), "munich-gw-03"))
	b.do("blur", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
	b.shot("pending.png")
	b.unlabelled()
	b.do("dark scheme", colorScheme("dark"))
	b.shot("pending-dark.png")
	b.do("light scheme", colorScheme("light"))
	b.do("copy a fingerprint", chromedp.Click(chromedp.CSS(row(f.active[activeMACs[0]].ID)+" .fp-line button")))
	b.wait("copied, or the fallback", `document.querySelector(`+js(row(f.active[activeMACs[0]].ID)+" .fp-line button")+`).textContent === "Copied" ||
		document.getElementById("toasts").textContent.includes("clipboard is not available")`)

	// Server-side filters: silent only, then active only, then a search.
	b.do("silent only", chromedp.Click(chromedp.CSS(`label[for=seen-silent]`)))
	b.wait("three silent rows", `document.querySelectorAll("tr[data-id]").length === 3 && location.hash.includes("seen=silent")`)
	b.do("active only", chromedp.Click(chromedp.CSS(`label[for=seen-active]`)))
	b.wait("five active rows", `document.querySelectorAll("tr[data-id]").length === 5`)
	b.do("all", chromedp.Click(chromedp.CSS(`label[for=seen-all]`)))
	b.do("search", chromedp.SendKeys(chromedp.ID("pending-search"), "b8:27:eb"))
	b.wait("two matches", `document.querySelectorAll("tr[data-id]").length === 2`)
	b.do("clear the search", clear("#pending-search"))
	b.wait("all rows again", `document.querySelectorAll("tr[data-id]").length === 8`)

	// An invalid name: the server's message shows in the row.
	first := row(f.active[activeMACs[0]].ID)
	b.do("an invalid name", chromedp.SendKeys(chromedp.CSS(first+" input.name-input"), "Berlin_GW\r"))
	b.wait("the error", `document.querySelector(`+js(first+" .row-error")+`).textContent.length > 0`)
	b.do("clear", clear(first+" input.name-input"))
	b.do("a name taken in DPS", chromedp.SendKeys(chromedp.CSS(first+" input.name-input"), "munich-gw-09\r"))
	b.wait("the DPS error", `(t => t.includes("munich-gw-09") && /dps/i.test(t))(document.querySelector(`+js(first+" .row-error")+`).textContent)`)
	b.do("clear", clear(first+" input.name-input"))
	b.do("a taken name", chromedp.SendKeys(chromedp.CSS(first+" input.name-input"), "berlin-gw-01\r"))
	b.wait("the taken error", `document.querySelector(`+js(first+" .row-error")+`).textContent.includes("berlin-gw-01")`)
	b.shot("pending-error.png")

	b.do("open Devices", chromedp.Click(chromedp.CSS(`a[data-nav=devices]`)))
	b.wait("every device", `document.querySelectorAll("tr[data-id]").length === 12`)
	for id, state := range map[string]string{f.configured: "configured", f.provisioned: "provisioned", f.failed: "failed", f.dismissed: "dismissed"} {
		if got := b.str(`document.querySelector(` + js(row(id)) + `).dataset.state`); got != state {
			t.Errorf("devices view shows %s as %s, want %s", id, got, state)
		}
	}
	b.shot("devices.png")
	b.unlabelled()
	b.do("filter failed", chromedp.SetValue(chromedp.ID("devices-state"), "failed"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("devices-state").dispatchEvent(new Event("change"))`))
	b.wait("one failed device", `document.querySelectorAll("tr[data-id]").length === 1`)

	// The failed device: reason, failed step, and Retry once Vault is back.
	b.do("open the failed device", chromedp.Click(chromedp.CSS(row(f.failed)+" a")))
	b.wait("the retry box", `!!document.querySelector("button[data-action=retry]").offsetParent`)
	if txt := b.pageText(); !strings.Contains(txt, "vault") || !strings.Contains(txt, "Step failed") {
		t.Errorf("failed device page lacks the failed step: %s", txt)
	}
	b.shot("device-failed.png")
	f.sims.Vault.Faults.SetFailRate(0)
	b.do("retry", chromedp.Click(chromedp.CSS("button[data-action=retry]")))
	b.wait("provisioned after retry", `document.querySelector(".title-line .state").dataset.state === "provisioned"`)

	b.do("open the configured device", chromedp.Navigate(f.url+"/#/devices/"+f.configured))
	b.wait("its steps", `document.querySelectorAll(".grid-steps tbody tr").length === 4`)
	b.wait("its timeline", `document.querySelectorAll(".timeline li").length >= 8`)
	txt := b.pageText()
	for _, want := range []string{"berlin-gw-01", "configured", "Manifest applied", "iothub"} {
		if !strings.Contains(txt, want) {
			t.Errorf("configured device page lacks %q", want)
		}
	}
	b.shot("device.png")
	b.noProblems()
}

// TestNarrowScreen renders the pending view on a phone-sized screen: the
// table turns into cards and nothing overflows sideways.
func TestNarrowScreen(t *testing.T) {
	b := newBrowser(t, 390, 844)
	e := newEnv(t)
	e.enrollAt("00:07:32:4a:77:e2", "10.20.7.31", 3*time.Hour)
	e.gateway("00:0d:b9:48:11:20", false)
	e.gateway("b8:27:eb:5c:12:8e", true)
	e.pending(3)
	b.login(e.url, e.token)
	b.wait("three cards", `document.querySelectorAll("tr[data-id]").length === 3`)
	b.fitsWidth(390)
	if d := b.str(`getComputedStyle(document.querySelector("tr[data-id]")).display`); d != "block" {
		t.Errorf("rows on a narrow screen have display %q, want stacked cards (block)", d)
	}
	b.wait("the accept button visible", `document.querySelector("button[data-action=accept]").getBoundingClientRect().right <= 390`)
	b.shot("pending-narrow.png")
	b.noProblems()
}
