package uitest

import (
	"strings"
	"testing"
)

// TestSameMACFlagged: a second gateway enrolls claiming a waiting gateway's
// MAC, as an impostor would. Both rows get a warning badge, live, naming the
// other's key, so neither looks like an ordinary stranger; a third gateway
// with its own MAC gets none.
func TestSameMACFlagged(t *testing.T) {
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)

	e.gateway(mac(0x51), false)
	e.gateway(mac(0x52), true)
	first := e.pending(2)
	real, stranger := first[mac(0x51)], first[mac(0x52)]

	b.login(e.url, e.token)
	b.wait("two pending rows", `document.querySelectorAll("tr[data-id]").length === 2`)
	if b.bool(`!!document.querySelector(".badge-dup:not([hidden])")`) {
		t.Fatal("a warning badge shows before any MAC is shared")
	}

	impostor := e.enrollAt(real.MAC, "198.51.100.9", 0)
	badge := func(id string) string { return js(row(id) + ` .badge-dup[data-flag=same-mac]`) }
	b.wait("the impostor's row, live", `!!document.querySelector(`+js(row(impostor))+`)`)
	b.wait("the badge on the real gateway", `!document.querySelector(`+badge(real.ID)+`).hidden`)
	b.wait("the badge on the impostor", `!document.querySelector(`+badge(impostor)+`).hidden`)
	imp := e.device(impostor)
	if got := b.str(`document.querySelector(` + badge(real.ID) + `).textContent`); !strings.Contains(got, "same MAC as key "+imp.Fingerprint[:16]) {
		t.Errorf("real gateway's badge reads %q, want it to name the impostor's key %s", got, imp.Fingerprint[:16])
	}
	if got := b.str(`document.querySelector(` + badge(impostor) + `).textContent`); !strings.Contains(got, "same MAC as key "+real.Fingerprint[:16]) {
		t.Errorf("impostor's badge reads %q, want it to name the real key %s", got, real.Fingerprint[:16])
	}
	if !b.bool(`document.querySelector(` + js(row(real.ID)) + `).classList.contains("is-duplicate")`) {
		t.Error("the flagged row is not marked as a duplicate")
	}
	if b.bool(`!document.querySelector(` + js(row(stranger.ID)+` .badge-dup[data-flag=same-mac]`) + `).hidden`) {
		t.Error("a gateway with its own MAC is flagged")
	}
	b.noProblems()
}
