package uitest

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
	"gatehouse/internal/keytest"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// listFleet is nine gateways as the Devices list sees them: seven waiting,
// two named with labels, each with the hostname and agent version its
// agent sent.
type listFleet struct {
	*env
	ids   []string // in enrollment order, so the last is the newest
	codes []string
}

func newListFleet(t *testing.T) *listFleet {
	t.Helper()
	f := &listFleet{env: newEnv(t)}
	for i := range 9 {
		st := f.enrollClaims(fmt.Sprintf("02:00:5e:20:00:%02x", i+1), fmt.Sprintf("edge-%02d.plant.example", i+1), fmt.Sprintf("1.%d.0", i))
		f.ids, f.codes = append(f.ids, st.DeviceID), append(f.codes, st.VerificationCode)
	}
	for i, name := range map[int]string{2: "munich-gw-01", 5: "berlin-gw-02"} {
		labels := map[string]string{"site": strings.SplitN(name, "-", 2)[0], "line": fmt.Sprint(i)}
		if _, err := f.svc.Approve(f.ctx, "token:setup", f.ids[i], provision.Approval{Name: name, Labels: labels}); err != nil {
			t.Fatalf("approve %s: %v", name, err)
		}
	}
	return f
}

// enrollClaims enrolls a gateway through the service, saying hostname and
// agent version of itself as the agent does.
func (e *env) enrollClaims(mac, hostname, version string) *protocol.Status {
	e.t.Helper()
	sig, sealKey := keytest.Ed25519(e.t)
	st, err := e.svc.Enroll(e.ctx, sig, protocol.EnrollRequest{MAC: mac, SealKey: sealKey,
		Hostname: hostname, AgentVersion: version}, "10.20.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// rowIDs is the ids of the rows the list shows, top to bottom.
func (b *browser) rowIDs() []string {
	var ids []string
	b.eval(`[...document.querySelectorAll("tr[data-id]")].map(r => r.dataset.id)`, &ids)
	return ids
}

func (b *browser) openDevices() {
	b.t.Helper()
	b.do("open Devices", chromedp.Click(chromedp.CSS(`a[data-nav=devices]`)))
	b.wait("nine rows", `document.querySelectorAll("tr[data-id]").length === 9`)
}

func TestDevicesListColumnsAndSearch(t *testing.T) {
	b := newBrowser(t, 1360, 860)
	f := newListFleet(t)
	b.login(f.url, f.token)
	b.openDevices()

	// The new columns: hostname, agent version, labels.
	named := row(f.ids[2])
	b.wait("the labels", `document.querySelector(`+js(named+" .cell-labels")+`).textContent.includes("site=munich")`)
	for sel, want := range map[string]string{
		named + " .cell-host":   "edge-03.plant.example",
		named + " .cell-agent":  "1.2.0",
		named + " .cell-labels": "line=2site=munich",
	} {
		if got := b.str(`document.querySelector(` + js(sel) + `).textContent`); got != want {
			t.Errorf("%s shows %q, want %q", sel, got, want)
		}
	}
	var heads []string
	b.eval(`[...document.querySelectorAll(".grid-devices thead th")].map(th => th.textContent.replace(/[▲▼↕]/g, ""))`, &heads)
	for _, want := range []string{"Hostname", "Agent", "Labels"} {
		if !slices.Contains(heads, want) {
			t.Errorf("column heads %q lack %s", heads, want)
		}
	}

	// The code as the gateway's console writes it, spaces and all.
	code := protocol.FormatCode(f.codes[6])
	b.do("search by code", chromedp.SendKeys(chromedp.ID("devices-search"), code))
	b.wait("the one gateway with that code", `(ids => ids.length < 9 && ids.includes(`+js(f.ids[6])+`))([...document.querySelectorAll("tr[data-id]")].map(r => r.dataset.id))`)
	for _, id := range b.rowIDs() {
		if id != f.ids[6] && !strings.Contains(f.device(id).Fingerprint, f.codes[6]) {
			t.Errorf("searching %q lists %s too", code, id)
		}
	}
	if h := b.str(`location.hash`); !strings.Contains(h, "q=") {
		t.Errorf("the search is not in the address: %s", h)
	}
	b.do("clear the search", clear("#devices-search"))
	b.wait("all rows again", `document.querySelectorAll("tr[data-id]").length === 9`)

	// Counts per state on the state filter, for the current search.
	b.wait("the counts", `document.querySelector("#devices-state option[value=pending]").textContent === "pending (7)"`)
	if all := b.str(`document.querySelector("#devices-state option[value='']").textContent`); all != "All states (9)" {
		t.Errorf("the all-states option reads %q, want All states (9)", all)
	}
	b.do("search one hostname", chromedp.SendKeys(chromedp.ID("devices-search"), "edge-03"))
	b.wait("one row", `document.querySelectorAll("tr[data-id]").length === 1`)
	b.wait("counts of the search", `document.querySelector("#devices-state option[value=pending]").textContent === "pending (0)" &&
		document.querySelector("#devices-state option[value='']").textContent === "All states (1)"`)

	// "unnamed" links look like the named ones: the link colour, underlined.
	b.do("clear", clear("#devices-search"))
	b.wait("all rows again", `document.querySelectorAll("tr[data-id]").length === 9`)
	var look struct {
		Named, Unnamed string
		Underline      string
	}
	b.eval(`(() => {
		const n = getComputedStyle(document.querySelector(`+js(row(f.ids[2])+" .cell-name a")+`));
		const u = getComputedStyle(document.querySelector(`+js(row(f.ids[0])+" .cell-name a.unnamed")+`));
		return {Named: n.color, Unnamed: u.color, Underline: u.textDecorationLine};
	})()`, &look)
	if look.Unnamed != look.Named || look.Underline != "underline" {
		t.Errorf("an unnamed link is %s with decoration %q; a named one %s: want the same colour, underlined", look.Unnamed, look.Underline, look.Named)
	}
	b.unlabelled()
	b.noProblems()
}

func TestDevicesListSortAndExport(t *testing.T) {
	b := newBrowser(t, 1360, 860)
	f := newListFleet(t)
	b.login(f.url, f.token)
	b.openDevices()
	newestFirst := slices.Clone(f.ids)
	slices.Reverse(newestFirst)
	if got := b.rowIDs(); !slices.Equal(got, newestFirst) {
		t.Errorf("rows = %q, want newest first %q", got, newestFirst)
	}
	sortBy := func(key string) {
		t.Helper()
		b.do("sort by "+key, chromedp.Click(chromedp.CSS(`th[data-sort=`+key+`] button`)))
	}
	ariaSort := func(key string) string {
		return b.str(`document.querySelector("th[data-sort=` + key + `]").getAttribute("aria-sort") || ""`)
	}

	// Name: A to Z with the unnamed after, then Z to A, then back.
	sortBy("name")
	b.wait("sorted by name", `location.hash.includes("sort=name") && document.querySelector("tr[data-id]").dataset.id === `+js(f.ids[5]))
	if got := b.rowIDs()[:2]; !slices.Equal(got, []string{f.ids[5], f.ids[2]}) {
		t.Errorf("by name the first rows are %q, want berlin-gw-02 then munich-gw-01", got)
	}
	if got := ariaSort("name"); got != "ascending" {
		t.Errorf("name head aria-sort = %q, want ascending", got)
	}
	if got := ariaSort("last_seen"); got != "" {
		t.Errorf("last seen head aria-sort = %q while sorted by name", got)
	}
	sortBy("name")
	b.wait("sorted by name, Z to A", `location.hash.includes("sort=-name") && document.querySelector("tr[data-id]").dataset.id === `+js(f.ids[2]))
	if got := ariaSort("name"); got != "descending" {
		t.Errorf("name head aria-sort = %q, want descending", got)
	}
	sortBy("name")
	b.wait("newest first again", `!location.hash.includes("sort=") && document.querySelector("tr[data-id]").dataset.id === `+js(newestFirst[0]))
	if got := ariaSort("name"); got != "" {
		t.Errorf("name head aria-sort = %q after the third click, want none", got)
	}

	// State: pending first; the sort survives a reload from the address.
	sortBy("state")
	b.wait("sorted by state", `location.hash.includes("sort=state") && document.querySelector("tr[data-id]").dataset.state === "pending"`)
	b.do("reload", chromedp.Reload())
	b.wait("the sorted list after reload", `document.querySelectorAll("tr[data-id]").length === 9 &&
		document.querySelector("th[data-sort=state]").getAttribute("aria-sort") === "ascending"`)
	states := b.rowStates()
	if i := slices.IndexFunc(states, func(s string) bool { return s != "pending" }); i != 7 {
		t.Errorf("by state the rows are %q, want the seven pending first", states)
	}
	// Last seen: most recent first on the first click.
	sortBy("last_seen")
	b.wait("sorted by last seen", `location.hash.includes("sort=-last_seen") &&
		document.querySelector("th[data-sort=last_seen]").getAttribute("aria-sort") === "descending"`)

	// Export what the filter selects: the pending ones, by name.
	b.do("filter pending", chromedp.SetValue(chromedp.ID("devices-state"), "pending"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("devices-state").dispatchEvent(new Event("change"))`))
	b.wait("seven pending rows", `document.querySelectorAll("tr[data-id]").length === 7`)
	sortBy("name")
	b.wait("the export link follows", `(h => h.includes("state=pending") && h.includes("sort=name") && h.includes("format=csv"))(document.getElementById("devices-export").getAttribute("href"))`)
	text := b.str(`fetch(document.getElementById("devices-export").href).then(r => r.text())`)
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, text)
	}
	if len(rows) != 8 || rows[0][0] != "id" {
		t.Fatalf("the export has %d rows (header %q), want a header and the 7 pending", len(rows), rows[0])
	}
	// The pending ones are unnamed: by name they go by id.
	var want []string
	for i, id := range f.ids {
		if i != 2 && i != 5 {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	var got []string
	for _, r := range rows[1:] {
		got = append(got, r[0])
		if r[2] != string(gatehouse.StatePending) || !strings.HasPrefix(r[4], "edge-") {
			t.Errorf("export row %q: want a pending gateway with its hostname", r)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("export ids = %q, want %q", got, want)
	}
	b.wait("the page in the export's order", `[...document.querySelectorAll("tr[data-id]")].map(r => r.dataset.id).join() === `+js(strings.Join(want, ",")))
	b.noProblems()
}

func (b *browser) rowStates() []string {
	var s []string
	b.eval(`[...document.querySelectorAll("tr[data-id]")].map(r => r.dataset.state)`, &s)
	return s
}

// TestDevicesListNarrow: on a phone nine gateways fit in a few screens,
// each a compact card that still names it, its state, MAC and hostname.
func TestDevicesListNarrow(t *testing.T) {
	b := newBrowser(t, 400, 800)
	f := newListFleet(t)
	b.login(f.url, f.token)
	b.openDevices()
	b.fitsWidth(400)
	var height int
	b.eval(`document.documentElement.scrollHeight`, &height)
	if height > 1400 {
		t.Errorf("nine gateways make a %d px page at 400 px wide, want at most 1400", height)
	}
	var card struct {
		Height  float64
		Text    string
		Visible []string
	}
	b.eval(`(() => {
		const r = document.querySelector(`+js(row(f.ids[2]))+`);
		const shown = [...r.children].filter(td => td.offsetParent !== null).map(td => td.className.split(" ")[0]);
		return {Height: r.getBoundingClientRect().height, Text: r.innerText, Visible: shown};
	})()`, &card)
	for _, want := range []string{"munich-gw-01", "02:00:5e:20:00:03", "edge-03.plant.example"} {
		if !strings.Contains(card.Text, want) {
			t.Errorf("the phone card lacks %q: %q", want, card.Text)
		}
	}
	if card.Height > 130 {
		t.Errorf("a phone card is %.0f px high, want at most 130", card.Height)
	}
	// The sort menu stands in for the hidden column heads.
	b.do("sort by name", chromedp.SetValue(chromedp.ID("devices-sort"), "name"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("devices-sort").dispatchEvent(new Event("change"))`))
	b.wait("sorted by name", `location.hash.includes("sort=name") && document.querySelector("tr[data-id]").dataset.id === `+js(f.ids[5]))
	b.noProblems()
}
