package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// chromium finds the browser, or skips: the UI tests need a real one.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GATEHOUSE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("GATEHOUSE_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("skipping browser tests: no Chromium found; install Debian's chromium package (or set GATEHOUSE_CHROMIUM)")
	return ""
}

// Every browser action and every wait has a deadline of its own, so a slow
// step on a loaded machine cannot spend the time of the steps after it, and
// a stuck one fails with what it was doing. Starting Chromium gets a longer
// one: a cold start on a busy machine takes a while.
const (
	startTimeout  = 60 * time.Second
	actionTimeout = 20 * time.Second
)

// browser is one headless Chromium with one tab, and everything the page
// wrote to its console.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// newBrowser starts Chromium for the length of the test, or skips the test
// where there is none.
func newBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root, where the sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	// The browser lives as long as the context of its first action, so that
	// context has no deadline; the start is bounded by a timer instead.
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: bctx}
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx, chromedp.EmulateViewport(int64(width), int64(height))) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting Chromium: %v", err)
		}
	case <-time.After(startTimeout):
		t.Fatalf("Chromium did not start within %v", startTimeout)
	}
	b.listen()
	return b
}

// listen collects what the tab writes to its console, for problems.
func (b *browser) listen() {
	messages := chromedp.Console(b.ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
}

// private opens a second tab in the same Chromium with cookies of its own,
// as a second person at another computer.
func (b *browser) private() *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	p := &browser{t: b.t, ctx: ctx}
	// As in newBrowser, the tab lives as long as its first action's
	// context, which therefore has no deadline of its own.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			b.t.Fatalf("opening a private tab: %v", err)
		}
	case <-time.After(actionTimeout):
		b.t.Fatalf("a private tab did not open within %v", actionTimeout)
	}
	p.listen()
	return p
}

// step is the context of one action: the browser's, with its own deadline.
func (b *browser) step(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, timeout)
}

// do runs actions, failing the test with what was being done. Together they
// have actionTimeout.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step(actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.pageText())
	}
}

// follow runs actions that load another page (a link out of the app and
// the redirects after it) and waits until it has loaded, so no wait looks
// at the page being left.
func (b *browser) follow(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step(actionTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.pageText())
	}
}

// eval evaluates a JavaScript expression and decodes its JSON value into v.
func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	ctx, cancel := b.step(actionTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		b.t.Fatalf("evaluate %s: decode %s: %v", expr, raw, err)
	}
}

func (b *browser) str(expr string) string {
	b.t.Helper()
	var s string
	b.eval(expr, &s)
	return s
}

func (b *browser) bool(expr string) bool {
	b.t.Helper()
	var v bool
	b.eval(expr, &v)
	return v
}

// wait polls a JavaScript condition in the page until it holds, for up to
// actionTimeout. Every wait is on the DOM, never on the clock, so the tests
// are fast and not flaky.
func (b *browser) wait(what, cond string) {
	b.t.Helper()
	// An element not there yet throws; that means "not yet", not failure.
	guarded := `(() => { try { return !!(` + cond + `); } catch (e) { return false; } })()`
	// The context outlasts the poll a little, so a condition that never
	// holds is reported as the poll's timeout.
	ctx, cancel := b.step(actionTimeout + 5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](guarded,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(actionTimeout)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage: %s", what, cond, err, b.pageText())
	}
}

// pageText is the visible text of the page, for failure messages.
func (b *browser) pageText() string {
	ctx, cancel := b.step(5 * time.Second)
	defer cancel()
	// Where the focus is belongs in the report too: several waits are on it.
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const a = document.activeElement;
		const focus = a ? a.tagName + (a.id ? "#" + a.id : "") + (a.dataset && a.dataset.action ? "[" + a.dataset.action + "]" : "") +
			" " + JSON.stringify((a.textContent || "").trim().slice(0, 40)) + (a.isConnected ? "" : " (detached)") : "none";
		return (document.body ? document.body.innerText : "") + "\nfocus: " + focus;
	})()`))
	if err != nil {
		return fmt.Sprintf("(unavailable: %v)", err)
	}
	text, focus, _ := strings.Cut(s, "\nfocus: ")
	return strings.Join(strings.Fields(text), " ") + "\nfocus: " + focus
}

// shot saves a screenshot of the viewport into $GATEHOUSE_SCREENSHOTS.
func (b *browser) shot(name string) {
	b.t.Helper()
	dir := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if dir == "" {
		return
	}
	// Let fonts settle and the caret blink away from the picture.
	b.do("blur for "+name, chromedp.Evaluate[chromedp.Void](`document.fonts.ready`, chromedp.EvalAwaitPromise))
	ctx, cancel := b.step(actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// problems lists console errors, uncaught exceptions and CSP violations.
// Failed requests the page handles itself (a 401 before login, a 409 for a
// taken name) are logged by Chromium as network errors; those are expected.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		switch {
		case m.IsException():
			out = append(out, fmt.Sprintf("exception: %s (%s:%d)", m.Text, m.URL, m.Line))
		case m.Type == chromedp.ConsoleError && m.Source == "network":
		case m.Type == chromedp.ConsoleError, m.Type == chromedp.ConsoleWarning && m.Source != "":
			out = append(out, fmt.Sprintf("%s %s: %s", m.Source, m.Type, m.Text))
		}
	}
	return out
}

func (b *browser) noProblems() {
	b.t.Helper()
	for _, p := range b.problems() {
		b.t.Errorf("browser console: %s", p)
	}
}

// unlabelled fails for form fields without a label and buttons without a
// name: what a screen reader would read as just "edit text" or "button".
func (b *browser) unlabelled() {
	b.t.Helper()
	var bad []string
	b.eval(`[...document.querySelectorAll("input, select, button")].filter(el =>
		el.tagName === "BUTTON" ? !(el.getAttribute("aria-label") || el.textContent.trim())
			: !(el.labels.length || el.getAttribute("aria-label"))
	).map(el => el.outerHTML.slice(0, 120))`, &bad)
	for _, el := range bad {
		b.t.Errorf("no accessible name: %s", el)
	}
}

// openLogin opens the page and waits for the login form, with the cursor
// in the user name.
func (b *browser) openLogin(url string) {
	b.t.Helper()
	b.do("open the page", chromedp.Navigate(url+"/"))
	b.wait("the login form", `document.activeElement && document.activeElement.id === "user"`)
}

// useToken switches the login page to its API token form.
func (b *browser) useToken() {
	b.t.Helper()
	b.do("use a token", chromedp.Click(chromedp.ID("login-toggle")))
	b.wait("the token form", `document.activeElement && document.activeElement.id === "token"`)
}

// login opens the page and logs in with an API token through the login
// page's token form.
func (b *browser) login(url, token string) {
	b.t.Helper()
	b.openLogin(url)
	b.useToken()
	b.do("log in",
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)))
	b.waitLoggedIn()
}

// loginPassword opens the page and logs in with a user name and password.
func (b *browser) loginPassword(url, user, password string) {
	b.t.Helper()
	b.openLogin(url)
	b.do("log in as "+user,
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(`#password-form button[type=submit]`)))
	b.waitLoggedIn()
}

// waitLoggedIn waits for the start page, where every way in ends (single
// sign-on's at "/", without a hash).
func (b *browser) waitLoggedIn() {
	b.t.Helper()
	b.wait("the pending view", `["", "#/pending"].includes(location.hash.split("?")[0]) && !!document.querySelector("#pending-title") && !document.getElementById("topbar").hidden`)
	// Changes made from here on reach the page live only once its event
	// stream is subscribed; before that the first load may miss them.
	b.wait("the live stream", `document.getElementById("live").dataset.state === "live"`)
}

// fitsWidth fails if the page is wider than a screen of width px.
func (b *browser) fitsWidth(px int) {
	b.t.Helper()
	var overflow int
	b.eval(`document.documentElement.scrollWidth - document.documentElement.clientWidth`, &overflow)
	if overflow > 0 {
		b.t.Errorf("the page is %d px wider than a %d px screen", overflow, px)
	}
}

// colorScheme makes the page see the system asking for "dark" or "light".
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// clear empties an input as a person would: select all, then Backspace,
// so the page sees the input event. (chromedp.Clear only resets the value
// attribute, which a typed value ignores.)
func clear(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`(el => { el.focus(); el.select(); })(document.querySelector(`+js(sel)+`))`),
		chromedp.SendKeys(chromedp.CSS(sel), kb.Backspace))
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// row is a CSS selector for the row of one device.
func row(id string) string { return fmt.Sprintf(`tr[data-id=%s]`, js(id)) }
