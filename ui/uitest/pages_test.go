package uitest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
	"gatehouse/server"
)

// holdDevice makes the page's request for gateway id wait until
// window.releaseDevice() is called, and adds the hostname and agent version
// an agent reports to its answer where the server sent none, so the test
// sees the page before and after the gateway's data arrives.
func holdDevice(id string) string {
	return `(() => {
		const real = window.fetch;
		window.heldDevice = 0;
		window.fetch = (url, opts) => {
			if (String(url) !== "/api/v1/devices/" + encodeURIComponent(` + js(id) + `)) return real(url, opts);
			window.heldDevice++;
			return new Promise((resolve) => {
				window.releaseDevice = () => resolve(real(url, opts).then(async (r) => {
					const d = await r.json();
					d.hostname ??= "edge-box-07";
					d.agent_version ??= "1.4.2";
					return new Response(JSON.stringify(d), { status: r.status, headers: { "Content-Type": "application/json" } });
				}));
			});
		};
	})()`
}

// TestDevicePageLoadingAndMissing: until a gateway's data arrives its page
// says it is loading and claims no state (a dismissed gateway never shows
// as pending on the way); once it arrives the agent's hostname and version
// show. An unknown id gets a page of its own: a clear title, the id asked
// for, the way back, and none of a gateway's empty sections.
func TestDevicePageLoadingAndMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enrollAt(mac(0x61), "10.0.0.61", 0)
	if _, err := e.svc.Dismiss(e.ctx, "token:setup", id); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	if !b.bool(`document.getElementById("simulated").hidden`) {
		t.Error("the simulated-backends banner shows for a server that did not say so")
	}

	b.do("hold the gateway's data", chromedp.Evaluate[chromedp.Void](holdDevice(id)))
	b.do("open the gateway", chromedp.Evaluate[chromedp.Void](`location.hash = "#/devices/" + `+js(id)))
	b.wait("the loading state", `window.heldDevice === 1 && !document.querySelector(".device-loading").hidden`)
	main := b.str(`document.getElementById("main").innerText`)
	if strings.Contains(strings.ToLower(main), "pending") {
		t.Errorf("while loading, the page claims a state: %q", main)
	}
	if !strings.Contains(main, "Loading the gateway") || !strings.Contains(main, id) {
		t.Errorf("while loading, the page reads %q; want it to say it is loading gateway %s", main, id)
	}
	if b.bool(`!!document.querySelector(".view-device .state:not([hidden])")`) {
		t.Error("a state badge shows before the state is known")
	}
	if b.bool(`document.querySelector(".view-device").getAttribute("aria-busy") !== "true"`) {
		t.Error("the loading view is not marked busy")
	}

	b.do("let the data through", chromedp.Evaluate[chromedp.Void](`window.releaseDevice()`))
	b.wait("the gateway", `document.querySelector(".view-device .state:not([hidden])")?.textContent.includes("dismissed")`)
	if !b.bool(`document.querySelector(".device-loading").hidden && !document.querySelector(".view-device").hasAttribute("aria-busy")`) {
		t.Error("the loading state stays after the data arrived")
	}
	identity := b.str(`document.querySelector(".cards .card").innerText`)
	for _, want := range []string{"Hostname", "edge-box-07", "Agent version", "1.4.2"} {
		if !strings.Contains(identity, want) {
			t.Errorf("the identity card lacks %q: %q", want, identity)
		}
	}

	// An id nobody has.
	const nosuch = "nosuchgw0042"
	b.do("open an unknown id", chromedp.Evaluate[chromedp.Void](`location.hash = "#/devices/`+nosuch+`"`))
	b.wait("the missing page", `document.querySelector(".view-device h1").textContent === "No such gateway"`)
	b.shot("device-missing.png")
	main = b.str(`document.getElementById("main").innerText`)
	if !strings.Contains(main, nosuch) {
		t.Errorf("the missing page does not say which id was asked for: %q", main)
	}
	for _, empty := range []string{"Provisioning steps", "Timeline", "Identity", "Status", "pending", "Loading"} {
		if strings.Contains(main, empty) {
			t.Errorf("the missing page shows %q: %q", empty, main)
		}
	}
	if b.bool(`!!document.querySelector(".view-device .state:not([hidden])")`) {
		t.Error("the missing page shows a state badge")
	}
	if title := b.str(`document.title`); title != "No such gateway · gatehouse" {
		t.Errorf("title = %q", title)
	}
	b.do("back to the list", chromedp.Click(chromedp.CSS(`.missing a[href="#/devices"]`)))
	b.wait("the devices list", `location.hash === "#/devices" && !document.querySelector(".view-device")`)
	b.noProblems()
}

// TestNameConflictLinksToGateway: approving under a name another gateway
// holds says which gateway, by name and MAC, with a link to its page; a
// name over 63 characters is kept whole with an error beside it, and is
// never sent or approved cut short.
func TestNameConflictLinksToGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	holder := e.enrollAt(mac(0x62), "10.0.0.62", 0)
	other := e.enrollAt(mac(0x63), "10.0.0.63", 0)
	e.approve(holder, "gw-taken")
	b := newBrowser(t, 1360, 900)
	b.login(e.url, e.token)
	input := row(other) + ` input.name-input`
	b.wait("the waiting row", `!!document.querySelector(`+js(input)+`)`)

	long := strings.Repeat("gw", 35) // 70 characters, every one allowed
	b.do("type a long name", chromedp.SendKeys(chromedp.CSS(input), long))
	errSel := js(row(other) + ` .row-error`)
	b.wait("the length error", `document.querySelector(`+errSel+`).textContent.includes("at most 63")`)
	if got := b.str(`document.querySelector(` + js(input) + `).value`); got != long {
		t.Errorf("the name box holds %d characters %q, want all 70 typed", len(got), got)
	}
	msg := b.str(`document.querySelector(` + errSel + `).textContent`)
	if !strings.Contains(msg, "has 70") {
		t.Errorf("the error %q does not say how long the name is", msg)
	}
	b.do("try to accept it", chromedp.SendKeys(chromedp.CSS(input), "\r"))
	b.wait("the error kept, the name whole", `document.querySelector(`+errSel+`).textContent.includes("at most 63") && `+
		`document.querySelector(`+js(input)+`).value.length === 70 && document.querySelector(`+js(input)+`).getAttribute("aria-invalid") === "true"`)
	if d := e.device(other); d.State != gatehouse.StatePending || d.Name != "" {
		t.Fatalf("a 70-character name changed the gateway: %s %q", d.State, d.Name)
	}
	b.do("shorten it", clear(input), chromedp.SendKeys(chromedp.CSS(input), "gw-ok"))
	b.wait("the length error gone", `document.querySelector(`+errSel+`).textContent === ""`)

	b.do("take a held name", clear(input), chromedp.SendKeys(chromedp.CSS(input), "gw-taken\r"))
	b.wait("the conflict", `document.querySelector(`+errSel+`).textContent.includes("already taken")`)
	b.shot("pending-conflict.png")
	msg = b.str(`document.querySelector(` + errSel + `).textContent`)
	for _, want := range []string{`"gw-taken"`, mac(0x62), "Open gw-taken (" + mac(0x62) + ")"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the conflict %q does not say %s", msg, want)
		}
	}
	link := row(other) + ` .row-error a.conflict-link`
	if href := b.str(`document.querySelector(` + js(link) + `).getAttribute("href")`); href != "#/devices/"+holder {
		t.Errorf("the conflict links to %q, want the holder's page #/devices/%s", href, holder)
	}
	if got := b.str(`document.querySelector(` + js(input) + `).value`); got != "gw-taken" {
		t.Errorf("after the conflict the name box holds %q", got)
	}
	b.do("follow the link", chromedp.Click(chromedp.CSS(link)))
	b.wait("the holder's page", `location.hash === "#/devices/`+holder+`" && document.querySelector(".view-device h1").textContent === "gw-taken"`)
	b.noProblems()
}

// TestPendingBadgeAndTitleFollowList: the Pending badge and the page title
// count what the list shows, from the same answer, as gateways come and go
// live; on another page they keep counting.
func TestPendingBadgeAndTitleFollowList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 3 {
		e.enrollAt(mac(0x70+i), "10.0.0.70", 0)
	}
	b := newBrowser(t, 1360, 900)
	b.login(e.url, e.token)
	agree := func(n int) {
		t.Helper()
		rows := `document.querySelectorAll("tr[data-id]").length`
		want := strconv.Itoa(n)
		b.wait("a list of "+want, rows+` === `+want)
		// Checked at once, with no wait: the same answer drew both.
		var got struct{ Rows, Badge, Title string }
		b.eval(`({Rows: String(`+rows+`), Badge: document.getElementById("pending-count").textContent, Title: document.title})`, &got)
		if got.Badge != want || got.Title != "("+want+") Pending · gatehouse" {
			t.Errorf("%s rows: badge %q, title %q; want %s and (%s) Pending · gatehouse", got.Rows, got.Badge, got.Title, want, want)
		}
	}
	agree(3)
	fourth := e.enrollAt(mac(0x74), "10.0.0.74", 0)
	agree(4)
	if _, err := e.svc.Dismiss(e.ctx, "token:bob", fourth); err != nil {
		t.Fatal(err)
	}
	agree(3)

	b.do("open the devices list", chromedp.Evaluate[chromedp.Void](`location.hash = "#/devices"`))
	b.wait("its title", `document.title === "(3) Devices · gatehouse"`)
	e.enrollAt(mac(0x75), "10.0.0.75", 0)
	b.wait("the count, live", `document.getElementById("pending-count").textContent === "4" && document.title === "(4) Devices · gatehouse"`)
	b.noProblems()
}

// TestDismissConfirmKeepsNameBox: asking "Dismiss this gateway?" does not
// squeeze the name box: it keeps its width, the question sits below it,
// and Cancel brings the row back as it was.
func TestDismissConfirmKeepsNameBox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enrollAt(mac(0x76), "10.0.0.76", 0)
	b := newBrowser(t, 1360, 900)
	b.login(e.url, e.token)
	input := js(row(id) + ` input.name-input`)
	b.wait("the row", `!!document.querySelector(`+input+`)`)
	var before, during struct{ Width, Bottom float64 }
	box := `(() => { const r = document.querySelector(` + input + `).getBoundingClientRect(); return {Width: r.width, Bottom: r.bottom}; })()`
	b.eval(box, &before)
	b.do("dismiss", chromedp.Click(chromedp.CSS(row(id)+` button[data-action=dismiss]`)))
	b.wait("the question", `!!document.querySelector(`+js(row(id)+` .confirm`)+`).offsetParent`)
	b.eval(box, &during)
	b.shot("pending-dismiss-confirm.png")
	if during.Width < before.Width-1 || during.Width < 180 {
		t.Errorf("while confirming the name box is %.0f px wide, %.0f px before: squeezed", during.Width, before.Width)
	}
	var qTop float64
	b.eval(`document.querySelector(`+js(row(id)+` .confirm`)+`).getBoundingClientRect().top`, &qTop)
	if qTop < during.Bottom {
		t.Errorf("the question (top %.0f) overlaps the line of the name box (bottom %.0f)", qTop, during.Bottom)
	}
	b.do("cancel", chromedp.Click(chromedp.CSS(row(id)+` button[data-action=cancel-dismiss]`)))
	b.wait("the buttons back", `!!document.querySelector(`+js(row(id)+` button[data-action=dismiss]`)+`).offsetParent`)
	var after struct{ Width, Bottom float64 }
	b.eval(box, &after)
	if after.Width != before.Width {
		t.Errorf("after Cancel the name box is %.0f px wide, %.0f px before", after.Width, before.Width)
	}
	b.noProblems()
}

// TestSimulatedBackendsBanner: a server on simulated backends says so in
// the page's header, on every page, until logging out.
func TestSimulatedBackendsBanner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *server.Server) { s.SimulatedBackends = true })
	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	banner := `document.getElementById("simulated")`
	b.wait("the banner", `!`+banner+`.hidden && !!`+banner+`.offsetParent`)
	if text := b.str(banner + `.textContent`); !strings.Contains(text, "Simulated backends") || !strings.Contains(text, "nothing real is provisioned") {
		t.Errorf("the banner reads %q", text)
	}
	b.shot("simulated-banner.png")
	if !b.bool(`document.getElementById("topbar").contains(` + banner + `)`) {
		t.Error("the banner is not in the page's header")
	}
	b.do("open the devices list", chromedp.Evaluate[chromedp.Void](`location.hash = "#/devices"`))
	b.wait("the devices list", `location.hash === "#/devices" && !`+banner+`.hidden`)
	// On a phone it wraps within the screen.
	b.do("a phone's width", chromedp.EmulateViewport(400, 800))
	b.wait("the narrow layout", `document.documentElement.clientWidth === 400`)
	b.fitsWidth(400)
	b.shot("simulated-banner-narrow.png")
	b.do("log out", chromedp.Click(chromedp.ID("logout")))
	b.wait("the login page", `location.hash === "#/login" && `+banner+`.hidden`)
	b.noProblems()
}
