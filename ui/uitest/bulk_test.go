package uitest

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
)

// TestPendingBulkApproveWithPattern ticks gateways on the Pending page,
// previews the names a pattern gives (and a refused pattern's reason),
// approves them in one bulk operation whose counts the page follows live,
// then dismisses the one left in bulk too.
func TestPendingBulkApproveWithPattern(t *testing.T) {
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)
	e.seedPending(5, func(i int) string { return fmt.Sprintf("02:00:5e:40:00:%02x", i) })
	b.login(e.url, e.token)
	b.wait("the rows", `document.querySelectorAll("tr[data-id]").length === 5`)
	if !b.bool(`document.getElementById("bulk-bar").hidden`) {
		t.Fatal("the bulk bar shows before anything is ticked")
	}

	// Tick the whole page, then untick the last row: four stay ticked.
	var ids, macs []string
	b.eval(`[...document.querySelectorAll("tr[data-id]")].map(tr => tr.dataset.id)`, &ids)
	b.eval(`[...document.querySelectorAll("tr[data-id]")].map(tr => tr.dataset.mac)`, &macs)
	b.do("select all", chromedp.Click(chromedp.ID("pick-all")))
	b.wait("five selected", `!document.getElementById("bulk-bar").hidden && document.getElementById("bulk-count").textContent === "5"`)
	b.do("untick the last", chromedp.Click(chromedp.CSS(row(ids[4])+" input.pick")))
	b.wait("four selected", `document.getElementById("bulk-count").textContent === "4" && document.getElementById("pick-all").indeterminate`)

	// A name the policy refuses: the preview says so before anything runs.
	b.do("a bad pattern", chromedp.SendKeys(chromedp.ID("bulk-pattern"), "Site-{n}"))
	b.wait("the refusal", `document.getElementById("bulk-preview").classList.contains("is-error") && `+
		`document.getElementById("bulk-preview").textContent.startsWith("Cannot approve: gateway 1:")`)
	b.do("a good pattern", clear("#bulk-pattern"), chromedp.SendKeys(chromedp.ID("bulk-pattern"), "site-a-{n:03}"))
	b.wait("the preview of the names", `!document.getElementById("bulk-preview").classList.contains("is-error") && `+
		`document.getElementById("bulk-preview").textContent === `+
		js(fmt.Sprintf("Names: site-a-001 (%s), site-a-002 (%s), site-a-003 (%s), … site-a-004", macs[0], macs[1], macs[2])))
	b.shot("pending-bulk-preview.png")

	b.do("approve selected", chromedp.Click(chromedp.ID("bulk-approve")))
	b.wait("the finished counts", `document.getElementById("bulk-run").dataset.done === "4" && `+
		`document.getElementById("bulk-counts").textContent === "4 done, 0 failed of 4"`)
	b.wait("the approved rows to go", `document.querySelectorAll("tr[data-id]").length === 1 && !!document.querySelector(`+js(row(ids[4]))+`)`)
	// The result stays until the operator closes it.
	b.wait("the result still shown", `!document.getElementById("bulk-bar").hidden && !document.getElementById("bulk-run").hidden`)
	b.shot("pending-bulk-done.png")
	for i, id := range ids[:4] {
		d := e.device(id)
		if want := fmt.Sprintf("site-a-%03d", i+1); d.Name != want || d.State == gatehouse.StatePending {
			t.Errorf("gateway %d: %s named %q, want approved as %s (in page order)", i, d.State, d.Name, want)
		}
	}

	// The last one, dismissed in bulk after a confirmation.
	b.do("tick the last", chromedp.Click(chromedp.CSS(row(ids[4])+" input.pick")))
	b.wait("one selected", `document.getElementById("bulk-count").textContent === "1"`)
	b.do("dismiss selected", chromedp.Click(chromedp.ID("bulk-dismiss")))
	b.wait("the confirmation", `!!document.getElementById("bulk-confirm-dismiss").offsetParent`)
	b.do("confirm", chromedp.Click(chromedp.ID("bulk-confirm-dismiss")))
	b.wait("the dismissal counted", `document.getElementById("bulk-counts").textContent === "1 done, 0 failed of 1"`)
	b.wait("no rows left", `document.querySelectorAll("tr[data-id]").length === 0`)
	if d := e.device(ids[4]); d.State != gatehouse.StateDismissed {
		t.Errorf("the last gateway is %s, want dismissed", d.State)
	}
	b.noProblems()
	b.unlabelled()
}
