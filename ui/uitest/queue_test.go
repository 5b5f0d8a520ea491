package uitest

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
	"gatehouse/internal/keytest"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// TestPendingQueueAlert fills a small pending queue: the Pending page warns
// from 90% on, says plainly when the queue is full and new gateways are
// refused, and takes the warning back as operators make room.
func TestPendingQueueAlert(t *testing.T) {
	const capacity = 20
	b := newBrowser(t, 1360, 900)
	e := newEnvWith(t, func(c *provision.Config) { c.PendingCap = capacity })
	e.seedPending(17, func(i int) string { return fmt.Sprintf("02:00:5e:30:00:%02x", i) })
	b.login(e.url, e.token)
	b.wait("the first rows", `document.querySelectorAll("tr[data-id]").length === 17`)
	if !b.bool(`document.getElementById("queue-alert").hidden`) {
		t.Fatalf("17 of %d pending shows the queue alert: %s", capacity, b.str(`document.getElementById("queue-alert").textContent`))
	}

	// Enrollments arrive live: at 18 of 20 the page warns.
	e.enrollAt("02:00:5e:30:01:00", "203.0.113.5", 0)
	alert := `document.getElementById("queue-alert")`
	b.wait("the nearly-full warning", `!`+alert+`.hidden && `+alert+`.dataset.level === "near" && `+
		alert+`.textContent.includes("nearly full: 18 of 20 gateways")`)

	// The last two places are the reserve, kept for addresses with none
	// waiting: these come from two more sites.
	e.enrollAt("02:00:5e:30:01:01", "203.0.113.6", 0)
	e.enrollAt("02:00:5e:30:01:02", "203.0.113.7", 0)
	b.wait("the full alert", alert+`.dataset.level === "full" && `+alert+`.textContent.includes("full: 20 of 20 gateways") && `+
		alert+`.textContent.includes("New gateways cannot enroll")`)
	if role := b.str(alert + `.getAttribute("role")`); role != "alert" {
		t.Errorf("the queue alert has role %q; screen readers should hear it", role)
	}
	b.shot("pending-queue-full.png")

	// What the page says is what the server does: a new key is refused.
	sig, sealKey := keytest.Ed25519(t)
	_, err := e.svc.Enroll(e.ctx, sig, protocol.EnrollRequest{MAC: "02:00:5e:30:01:03", SealKey: sealKey}, "203.0.113.5")
	if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE {
		t.Fatalf("enrolling into a full queue: %v, want unavailable", err)
	}

	// Dismissing one here makes room: back to a warning.
	first := b.str(`document.querySelector("tr[data-id]").dataset.id`)
	b.do("dismiss", chromedp.Click(chromedp.CSS(row(first)+` button[data-action=dismiss]`)))
	b.wait("the confirmation", `!!document.querySelector(`+js(row(first)+` button[data-action=confirm-dismiss]`)+`).offsetParent`)
	b.do("confirm", chromedp.Click(chromedp.CSS(row(first)+` button[data-action=confirm-dismiss]`)))
	b.wait("the warning again", alert+`.dataset.level === "near" && `+alert+`.textContent.includes("19 of 20")`)

	// Below 90% it goes away.
	b.wait("the dismissed row to go", `!document.querySelector(`+js(row(first))+`)`)
	for range 2 {
		next := b.str(`document.querySelector("tr[data-id]").dataset.id`)
		if _, err := e.svc.Dismiss(e.ctx, "token:alice", next); err != nil {
			t.Fatal(err)
		}
		b.wait("the row to go", `!document.querySelector(`+js(row(next))+`)`)
	}
	b.wait("no alert at 17 of 20", alert+`.hidden && document.querySelectorAll("tr[data-id]").length === 17`)
}
