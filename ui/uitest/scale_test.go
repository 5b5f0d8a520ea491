package uitest

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestTenThousandPending pages through 10,000 waiting gateways: the page
// asks the server for 50 at a time and filters there, so it stays fast.
// The gateways are seeded in one transaction (env.seedPending): about 7 s
// under the race detector on two cores, over half of it making keys, so
// every run has all 10,000; only -short has fewer. The seeding has no
// deadline of its own (a busier machine just takes longer); the page's
// actions each have theirs.
func TestTenThousandPending(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 120
	}
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)
	start := time.Now()
	e.seedPending(n, func(i int) string { return fmt.Sprintf("02:00:5e:20:%02x:%02x", i>>8, i&0xff) })
	t.Logf("seeded %d gateways in %v", n, time.Since(start).Round(time.Millisecond))

	b.login(e.url, e.token)
	total := fmt.Sprint(n)
	if n >= 1000 {
		total = fmt.Sprintf("%d,%03d", n/1000, n%1000)
	}
	b.wait("the first page", `document.querySelectorAll("tr[data-id]").length === 50`)
	b.wait("the range", `document.querySelector(".pager .range").textContent === "1–50 of `+total+`"`)
	b.do("next page", chromedp.Click(chromedp.CSS(`button[data-page=next]`)))
	b.wait("page two", `document.querySelector(".pager .range").textContent === "51–100 of `+total+`" && location.hash.includes("page=2")`)
	b.do("search", chromedp.SendKeys(chromedp.ID("pending-search"), "02:00:5e:20:00:0"))
	b.wait("the matches", `document.querySelector(".toolbar .range").textContent === "16 waiting" && document.querySelectorAll("tr[data-id]").length === 16`)
	b.wait("the count in the header", `document.getElementById("pending-count").textContent === `+js(total))
}
