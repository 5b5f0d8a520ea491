package uitest

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// An approved gateway's page lets an operator change its labels, and shows
// a refused rename (DPS and the PKI keep the name) in the form, keeping
// what was typed.
func TestEditLabelsAndRefusedRename(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enrollAt(mac(9), "10.0.0.9", 0)
	e.approve(id, "gw-edit")
	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	b.do("open the gateway", chromedp.Navigate(e.url+"/#/devices/"+id))
	b.wait("the edit button", `!!document.querySelector("#edit-device")`)
	b.do("open the form", chromedp.Click(chromedp.CSS("#edit-device")))
	b.wait("the form with the name", `document.querySelector("#edit-name").value === "gw-edit"`)
	b.do("type labels", chromedp.SendKeys(chromedp.CSS("#edit-labels"), "site=plant-b\nrack=7"))
	b.do("save", chromedp.Click(chromedp.CSS(`#device-edit button[type=submit]`)))
	b.wait("the labels on the page", `document.querySelector(".labels")?.textContent.includes("site=plant-b")`)
	d, err := e.svc.Device(e.ctx, id)
	if err != nil || d.Labels["site"] != "plant-b" || d.Labels["rack"] != "7" {
		t.Fatalf("after saving: %+v, %v", d, err)
	}
	b.wait("the timeline entry", `document.querySelector(".timeline").textContent.includes("Labels changed")`)
	// The live update can draw the new labels before the PATCH's own answer
	// reaches the page, which is what closes the form. A click on the Edit
	// button before then closes the still-open form instead of opening it.
	b.wait("the form closed by the save", `document.querySelector("#device-edit").hidden`)

	b.do("open the form again", chromedp.Click(chromedp.CSS("#edit-device")))
	b.do("type a new name", chromedp.SetValue(chromedp.CSS("#edit-name"), "gw-renamed"))
	b.do("save", chromedp.Click(chromedp.CSS(`#device-edit button[type=submit]`)))
	b.wait("the refusal naming DPS", `document.querySelector("#device-edit-error").textContent.includes("dps:")`)
	b.wait("the typed name kept", `document.querySelector("#edit-name").value === "gw-renamed" && !document.querySelector("#device-edit").hidden`)
	if d, _ := e.svc.Device(e.ctx, id); d.Name != "gw-edit" {
		t.Errorf("a refused rename changed the name to %q", d.Name)
	}
	b.noProblems()
}
