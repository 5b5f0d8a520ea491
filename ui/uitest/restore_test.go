package uitest

import (
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
)

// A dismissed gateway's page offers to undo the dismissal to operators,
// and the button brings it back to pending; a viewer is only told how.
func TestRestoreDismissed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enrollAt(mac(7), "10.0.0.7", 0)
	if _, err := e.svc.Dismiss(e.ctx, "op", id); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	b.do("open the dismissed gateway", chromedp.Navigate(e.url+"/#/devices/"+id))
	b.wait("the undo button", `!!document.querySelector("button[data-action=restore]")`)
	b.do("move it back", chromedp.Click(chromedp.CSS(`button[data-action=restore]`)))
	b.wait("the pending notice", `document.querySelector(".notice").textContent.includes("waiting for approval")`)
	d, err := e.svc.Device(e.ctx, id)
	if err != nil || d.State != gatehouse.StatePending {
		t.Fatalf("after the click: %+v, %v", d, err)
	}
	b.wait("the timeline entry", `document.querySelector(".timeline").textContent.includes("Restored by token:alice")`)
	b.noProblems()
}
