package uitest

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
)

// A reflashed gateway (its MAC, a new key) shows on the Pending page as a
// re-key of its gateway, without a name to type, and on the gateway's page
// beside it with its own verification code; approving it there moves the
// gateway onto the new key under its name.
func TestRekeyCandidateShownBesideItsGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.enrollAt(mac(41), "10.0.0.41", 0)
	e.approve(id, "gw-rekey")
	e.waitState(id, gatehouse.StateProvisioned, gatehouse.StateConfigured, gatehouse.StateStalled)
	cand := e.enrollAt(mac(41), "10.0.0.42", 0)
	c := e.device(cand)

	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	b.do("open Pending", chromedp.Navigate(e.url+"/#/pending"))
	row := fmt.Sprintf(`document.querySelector('tr[data-id="%s"]')`, cand)
	b.wait("the candidate flagged as a re-key", row+`?.querySelector("[data-flag=rekey]:not([hidden])")?.textContent === "re-key of gw-rekey"`)
	if !b.bool(row + `.querySelector("input.name-input").hidden && ` + row + `.querySelector("button[data-action=accept]").textContent === "Approve re-key"`) {
		t.Error("the candidate's row asks for a name or does not say it approves a re-key")
	}

	b.do("open the gateway", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id="%s"] [data-flag=rekey]`, cand))))
	b.wait("the candidate beside the gateway with its code",
		fmt.Sprintf(`document.querySelector('.rekey-panel li[data-id="%s"]')?.textContent.includes(%q)`, cand, c.VerificationCode[:3]+" "+c.VerificationCode[3:]))
	b.do("approve the re-key", chromedp.Click(chromedp.CSS(`.rekey-panel button[data-action=approve-rekey]`)))
	if !e.until(func() bool { return e.device(id).Fingerprint == c.Fingerprint }) {
		t.Fatal("the gateway is not on the new key after the click")
	}
	b.wait("the panel gone and the timeline entry", `!document.querySelector(".rekey-panel") && document.querySelector(".timeline").textContent.includes("Rekey approved by token:alice")`)
	if d := e.device(id); d.Name != "gw-rekey" {
		t.Errorf("gateway renamed to %q", d.Name)
	}
	b.noProblems()
}
