package uitest

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"gatehouse"
	"gatehouse/store"
)

// keepCerts names an enrolled gateway, marks it configured and keeps
// certificates for it as provisioning and renewals leave them.
func (e *env) keepCerts(id, name string, certs ...gatehouse.DeviceCert) {
	e.t.Helper()
	st := gatehouse.StateConfigured
	err := e.db.InTx(e.ctx, func(tx *store.Tx) error {
		if err := tx.UpdateDevice(e.ctx, id, store.DeviceUpdate{Name: &name, State: &st}); err != nil {
			return err
		}
		for _, c := range certs {
			c.DeviceID = id
			if err := tx.AddCertificate(e.ctx, c); err != nil {
				return err
			}
			if c.RevokedAt != nil {
				if err := tx.MarkCertRevoked(e.ctx, c.Serial); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// The Certificates page lists the certificates that expire within 14 days
// and not those that expire later; a wider horizon shows those too, and the
// device page lists the gateway's renewals with the revoked one marked.
func TestCertificatesExpiringView(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now().UTC()
	day := 24 * time.Hour
	soon, later := e.enrollAt(mac(21), "10.0.0.21", 0), e.enrollAt(mac(22), "10.0.0.22", 0)
	e.keepCerts(soon, "gw-soon",
		gatehouse.DeviceCert{Serial: "5a:01", Origin: gatehouse.CertFromProvision, NotBefore: now.Add(-60 * day), NotAfter: now.Add(-day), RevokedAt: &now},
		gatehouse.DeviceCert{Serial: "5a:02", Origin: gatehouse.CertFromRenewal, NotBefore: now.Add(-27 * day), NotAfter: now.Add(3 * day)})
	e.keepCerts(later, "gw-later",
		gatehouse.DeviceCert{Serial: "1a:01", Origin: gatehouse.CertFromProvision, NotBefore: now, NotAfter: now.Add(60 * day)})

	b := newBrowser(t, 1280, 900)
	b.login(e.url, e.token)
	b.do("open Certificates from the menu", chromedp.Click(chromedp.CSS(`a[data-nav=certs]`)))
	b.wait("the heading", `document.querySelector("h1").textContent === "Certificates expiring within 14 days"`)
	b.wait("gw-soon's certificate", `!!document.querySelector("tr[data-serial='5a:02']")`)
	if b.bool(`!!document.querySelector("tr[data-serial='1a:01']")`) || b.bool(`!!document.querySelector("tr[data-serial='5a:01']")`) {
		t.Fatalf("the 14-day view lists a certificate expiring later, or a revoked one:\n%s", b.pageText())
	}
	if got := b.str(`document.querySelector("tr[data-serial='5a:02'] time").textContent`); got != "in 3 d" {
		t.Errorf("expires %q, want in 3 d", got)
	}
	// Choosing in the list, as a person does with the keyboard or mouse.
	var changed bool
	b.eval(`(() => { const s = document.querySelector("#certs-within"); s.value = "90";
		return s.dispatchEvent(new Event("change", { bubbles: true })); })()`, &changed)
	b.wait("gw-later's certificate", `!!document.querySelector("tr[data-serial='1a:01']")`)
	b.wait("the wider heading", `document.querySelector("h1").textContent === "Certificates expiring within 90 days"`)

	b.do("a phone", chromedp.EmulateViewport(390, 844))
	b.fitsWidth(390)
	b.do("a desktop again", chromedp.EmulateViewport(1280, 900))

	b.do("open gw-soon", chromedp.Click(chromedp.CSS(`tr[data-serial='5a:02'] a`)))
	b.wait("its certificates", `document.querySelectorAll(".panel tr[data-serial]").length === 2`)
	if !b.bool(`document.querySelector(".panel tr[data-serial='5a:01'] .cert-status").textContent === "revoked"`) ||
		!b.bool(`document.querySelector(".panel tr[data-serial='5a:02']").dataset.origin === "renewal"`) ||
		!b.bool(`document.querySelector(".certs-summary").textContent.includes("1 renewal")`) {
		t.Fatalf("device page certificates:\n%s", b.pageText())
	}
	b.noProblems()
}
