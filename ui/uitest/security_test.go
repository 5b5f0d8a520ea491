package uitest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestSecurityHeaders checks what the server sends with the page and its
// assets: a CSP without inline scripts, no framing, no referrer, and
// revalidated caching by ETag.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	resp, err = http.Get(e.url + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" || resp.Header.Get("Cache-Control") != "no-cache" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("app.js: %s, ETag %q, Cache-Control %q, Content-Type %q", resp.Status, etag,
			resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("GET", e.url+"/assets/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidating app.js: %s, want 304", resp.Status)
	}
}

// TestPageRunsUnderCSP loads the page in Chromium and fails on any console
// error, exception or CSP violation; then shows that the policy is really
// enforced (an injected inline script does not run), that a cookie session
// cannot change anything without its CSRF token, and that logging out ends
// the session.
func TestPageRunsUnderCSP(t *testing.T) {
	b := newBrowser(t, 1280, 800)
	e := newEnv(t)
	e.gateway(mac(1), false)
	id := e.pending(1)[mac(1)].ID

	b.login(e.url, e.token)
	b.wait("the pending row", `document.querySelectorAll("tr[data-id]").length === 1`)
	b.do("open Devices", chromedp.Click(chromedp.CSS(`a[data-nav=devices]`)))
	b.wait("the devices row", `document.querySelectorAll("tr[data-id]").length === 1`)
	b.do("open the device", chromedp.Click(chromedp.CSS(row(id)+" a")))
	b.wait("the device page", `document.querySelectorAll(".timeline li").length >= 1`)
	b.noProblems()
	if t.Failed() {
		return
	}

	ran := b.bool(`(() => {
		window.__violations = [];
		document.addEventListener("securitypolicyviolation", e => window.__violations.push(e.effectiveDirective));
		const s = document.createElement("script");
		s.textContent = "window.__inlineRan = true";
		document.head.append(s);
		return window.__inlineRan === true;
	})()`)
	if ran {
		t.Error("an inline script ran: the CSP is not enforced")
	}
	b.wait("the CSP violation report", `window.__violations.some(d => d.startsWith("script-src"))`)

	var status int
	b.eval(`fetch("/api/v1/devices/`+id+`/dismiss", {method: "POST"}).then(r => r.status)`, &status)
	if status != http.StatusForbidden {
		t.Errorf("a cookie POST without the CSRF token got %d, want 403", status)
	}
	if d := e.device(id); d.State != "pending" {
		t.Errorf("the device is %s after a refused POST", d.State)
	}

	b.do("log out", chromedp.Click(chromedp.ID("logout")))
	b.wait("the login page", `location.hash === "#/login" && !!document.getElementById("user")`)
	b.eval(`fetch("/api/v1/session").then(r => r.status)`, &status)
	if status != http.StatusUnauthorized {
		t.Errorf("session after logout: %d, want 401", status)
	}
}
