package uitest

import (
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
)

// An operator decommissions a provisioned gateway from its page: the
// button first shows the dry run's plan, and the confirmation stays
// disabled until the gateway's name is typed exactly. The page then
// follows each backend's removal to its receipt, and once all are done
// the gateway can be forgotten, behind the same typed confirmation.
func TestDecommissionTypedConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enrollAt(mac(11), "10.0.0.11", 0)
	e.approve(id, "gw-retire")
	e.waitState(id, gatehouse.StateProvisioned)
	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	b.do("open the gateway", chromedp.Navigate(e.url+"/#/devices/"+id))
	b.wait("the decommission button", `!!document.querySelector("button[data-action=decommission]:not([hidden])")`)
	b.do("ask to decommission", chromedp.Click(chromedp.CSS(`button[data-action=decommission]`)))
	b.wait("the plan", `document.querySelector(".decom-plan")?.textContent.includes("enrollment gw-retire — would remove")`)
	if !b.bool(`document.querySelector("button[data-action=confirm-decom]").disabled`) {
		t.Fatal("the confirmation is enabled before anything was typed")
	}
	b.do("type a wrong name", chromedp.SendKeys(chromedp.ID("decom-confirm"), "gw-retir"))
	if !b.bool(`document.querySelector("button[data-action=confirm-decom]").disabled`) {
		t.Fatal("the confirmation is enabled for a wrong name")
	}
	if d := e.device(id); d.State != gatehouse.StateProvisioned {
		t.Fatalf("the gateway is %s before the confirmation", d.State)
	}
	b.do("finish the name", chromedp.SendKeys(chromedp.ID("decom-confirm"), "e"))
	b.wait("the confirmation enabled", `!document.querySelector("button[data-action=confirm-decom]").disabled`)
	b.do("confirm", chromedp.Click(chromedp.CSS(`button[data-action=confirm-decom]`)))
	b.wait("every backend's receipt", `document.querySelector(".panel-decom")?.textContent.includes("Every backend has removed it")`)
	text := b.str(`document.querySelector(".grid-removals").textContent`)
	for _, want := range []string{"mender", "dps", "vault", "enrollment gw-retire: removed", "revoked"} {
		if !contains(text, want) {
			t.Errorf("the removals table lacks %q: %s", want, text)
		}
	}
	if d := e.device(id); d.State != gatehouse.StateDecommissioned {
		t.Fatalf("after the confirmation the gateway is %s", d.State)
	}
	b.wait("the timeline receipt", `document.querySelector(".timeline").textContent.includes("Decommissioned by token:alice")`)

	b.do("ask to forget", chromedp.Click(chromedp.CSS(`button[data-action=forget]`)))
	b.do("type the name", chromedp.SendKeys(chromedp.ID("decom-confirm"), "gw-retire"))
	b.do("forget", chromedp.Click(chromedp.CSS(`button[data-action=confirm-decom]`)))
	b.wait("the device list", `location.hash.startsWith("#/devices") && !location.hash.includes(`+"`"+id+"`"+`)`)
	if _, err := e.svc.Device(e.ctx, id); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		t.Fatalf("after forgetting: %v", err)
	}
	b.noProblems()
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// A backend that refuses the removal shows on the page: its row failed
// with the reason, the IoT Hub waiting for DPS, and Retry now; once the
// backend answers again the receipts complete without anyone reloading.
func TestDecommissionFailingBackendVisible(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enrollAt(mac(12), "10.0.0.12", 0)
	e.approve(id, "gw-stuck")
	e.waitState(id, gatehouse.StateProvisioned)
	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	b.do("open the gateway", chromedp.Navigate(e.url+"/#/devices/"+id))
	b.wait("the page", `!!document.querySelector("button[data-action=decommission]:not([hidden])")`)
	e.sims.DPS.Faults.FailNext(1<<30, 403, 0)
	if _, err := e.svc.Decommission(e.ctx, "token:bob", id, false); err != nil {
		t.Fatal(err)
	}
	b.wait("the failing dps row", `document.querySelector("tr[data-backend=dps][data-state=failed]")?.textContent.includes("403")`)
	b.wait("the waiting hub row", `document.querySelector("tr[data-backend=iothub]")?.textContent.includes("waiting for dps")`)
	b.wait("retry now", `!!document.querySelector("button[data-action=retry-removal]:not([hidden])")`)
	if b.bool(`!!document.querySelector("button[data-action=forget]:not([hidden])")`) {
		t.Error("forget is offered while dps still holds the gateway")
	}
	b.do("retry now", chromedp.Click(chromedp.CSS(`button[data-action=retry-removal]`)))
	b.wait("the retry's answer", `document.getElementById("toasts").textContent.includes("Retrying the failing removals now")`)
	e.sims.DPS.Faults.FailNext(0, 0, 0)
	b.wait("every backend's receipt", `document.querySelector(".panel-decom")?.textContent.includes("Every backend has removed it")`)
	if text := b.str(`document.querySelector(".decom-intro").textContent`); !contains(text, "Decommissioned by token:bob on ") || contains(text, "object") {
		t.Errorf("the panel's heading reads %q", text)
	}
	b.wait("forget offered", `!!document.querySelector("button[data-action=forget]:not([hidden])")`)
	b.noProblems()
}
