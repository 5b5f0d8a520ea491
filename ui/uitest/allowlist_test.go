package uitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gatehouse"
	"gatehouse/provision"
)

func allowlistRow(mac string) string { return `#main tr[data-mac=` + js(mac) + `]` }

// TestAllowlistPage is an operator listing a site's gateways: a file with
// one bad row is refused with that line shown and nothing listed; with
// "import the good rows" the rest are listed, unused; a listed gateway
// then boots, is approved under its listed name with no one clicking, and
// its entry turns used, live. A viewer sees the list but no upload.
func TestAllowlistPage(t *testing.T) {
	b := newBrowser(t, 1360, 900)
	e := newEnv(t)
	listed := mac(0x31)
	file := filepath.Join(t.TempDir(), "site-b.csv")
	csv := "mac,name,labels\n" + listed + ",site-b-001,site=b;group=edge\n02:00:5e:10:00:zz,site-b-002\n" + mac(0x33) + ",site-b-003\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}

	b.login(e.url, e.token)
	b.do("open Allowlist", chromedp.Click(chromedp.CSS(`a[data-nav=allowlist]`)))
	b.wait("the empty list", `document.querySelector("#main .empty") && !document.querySelector("#main .empty").hidden`)
	b.unlabelled()
	b.do("choose the file", chromedp.SetUploadFiles(chromedp.ID("allowlist-file"), []string{file}))
	b.do("import", chromedp.Click(chromedp.ID("allowlist-import")))
	b.wait("the refusal", `document.getElementById("allowlist-summary").dataset.kind === "error"`)
	if s := b.str(`document.getElementById("allowlist-summary").textContent`); !strings.Contains(s, "nothing was imported") {
		t.Errorf("summary of a refused file = %q", s)
	}
	line := b.str(`[...document.querySelectorAll("#allowlist-errors li")].map(li => li.textContent).join("\n")`)
	if !strings.HasPrefix(line, "site-b.csv:3 ") || !strings.Contains(line, "invalid MAC") || strings.Contains(line, "\n") {
		t.Errorf("bad rows shown = %q, want line 3 alone", line)
	}
	if page, _ := e.svc.Allowlist(e.ctx, 0, 0); page.Total != 0 {
		t.Fatalf("a refused file listed %d entries", page.Total)
	}
	b.shot("allowlist-refused.png")

	b.do("import the good rows",
		chromedp.Click(chromedp.ID("allowlist-skip")),
		chromedp.Click(chromedp.ID("allowlist-import")))
	b.wait("two unused entries", `document.querySelectorAll("#main tr[data-status=unused]").length === 2`)
	if s := b.str(`document.getElementById("allowlist-summary").textContent`); !strings.Contains(s, "2 of 3 rows imported") || !strings.Contains(s, "1 bad row skipped") {
		t.Errorf("summary = %q", s)
	}
	if txt := b.str(`document.querySelector(` + js(allowlistRow(listed)) + `).textContent`); !strings.Contains(txt, "site-b-001") ||
		!strings.Contains(txt, "group=edge, site=b") || !strings.Contains(txt, "token:alice") {
		t.Errorf("listed row = %q", txt)
	}

	// The gateway boots: approved from the list, its entry used, live.
	e.gateway(listed, false)
	e.waitAgent(listed)
	b.wait("the entry used", `!!document.querySelector(`+js(allowlistRow(listed)+`[data-status=used] a[href^="#/devices/"]`)+`)`)
	id := strings.TrimPrefix(b.str(`document.querySelector(`+js(allowlistRow(listed)+` a`)+`).getAttribute("href")`), "#/devices/")
	d := e.device(id)
	if d.Name != "site-b-001" || d.Labels["group"] != "edge" || d.ApprovedBy != "allowlist (imported by token:alice)" {
		t.Errorf("device from the list = %+v", d)
	}
	if d.State != gatehouse.StateProvisioned && d.State != gatehouse.StateConfigured {
		t.Errorf("device state = %s", d.State)
	}
	b.shot("allowlist.png")

	// Remove the unused one, through the question.
	other := allowlistRow(mac(0x33))
	b.do("remove", chromedp.Click(chromedp.CSS(other+` button[data-action=remove]`)))
	b.wait("the question", `document.querySelector(`+js(other+` .confirm-q`)+`).textContent.includes("wait for approval")`)
	b.do("confirm", chromedp.Click(chromedp.CSS(other+` button[data-action=confirm]`)))
	b.wait("the row gone", `!document.querySelector(`+js(other)+`) && document.querySelectorAll("#main tbody tr").length === 1`)
	b.noProblems()

	// A viewer sees the list, not the upload.
	viewer, _, err := e.svc.CreateToken(e.ctx, provision.TokenSpec{Name: "watcher", Role: gatehouse.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	v := b.private()
	v.login(e.url, viewer)
	v.do("open Allowlist", chromedp.Click(chromedp.CSS(`a[data-nav=allowlist]`)))
	v.wait("the list", `document.querySelectorAll("#main tbody tr").length === 1`)
	if v.bool(`!!document.getElementById("allowlist-upload") || !!document.querySelector("#main button[data-action=remove]")`) {
		t.Error("a viewer is offered the upload or Remove")
	}
	v.do("a phone", chromedp.EmulateViewport(390, 844))
	v.fitsWidth(390)
	v.noProblems()
}
