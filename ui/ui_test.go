package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w
}

func TestServesIndexAndAssets(t *testing.T) {
	for path, ctype := range map[string]string{
		"/":                   "text/html; charset=utf-8",
		"/assets/app.js":      "text/javascript; charset=utf-8",
		"/assets/app.css":     "text/css; charset=utf-8",
		"/assets/favicon.svg": "image/svg+xml",
	} {
		w := get(t, path)
		if w.Code != 200 || w.Header().Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q, want 200 %q", path, w.Code, w.Header().Get("Content-Type"), ctype)
		}
		if w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: Cache-Control %q", path, w.Header().Get("Cache-Control"))
		}
		if !regexp.MustCompile(`^"[0-9a-f]{16}"$`).MatchString(w.Header().Get("ETag")) {
			t.Errorf("%s: ETag %q", path, w.Header().Get("ETag"))
		}
	}
}

func TestETagRevalidation(t *testing.T) {
	etag := get(t, "/assets/app.js").Header().Get("ETag")
	if w := get(t, "/assets/app.js", "If-None-Match", etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("matching If-None-Match: %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := get(t, "/assets/app.js", "If-None-Match", `"other", W/`+etag); w.Code != http.StatusNotModified {
		t.Errorf("weak match in a list: %d", w.Code)
	}
	if w := get(t, "/assets/app.js", "If-None-Match", `"stale"`); w.Code != 200 {
		t.Errorf("stale If-None-Match: %d", w.Code)
	}
	if get(t, "/assets/app.css").Header().Get("ETag") == etag {
		t.Error("different files share an ETag")
	}
}

func TestUnknownAssets(t *testing.T) {
	for _, p := range []string{"/assets/nope.js", "/assets/", "/assets/../ui.go", "/elsewhere"} {
		if w := get(t, p); w.Code != 404 {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
}

// TestNoInlineCode keeps the page within the server's CSP (script-src and
// style-src 'self'): no inline scripts, styles or event handlers, and no
// asset from another origin.
func TestNoInlineCode(t *testing.T) {
	bad := []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]+</script>`),
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
		regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`),
		regexp.MustCompile(`localStorage|sessionStorage`),
	}
	fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".svg") {
			return err
		}
		b, _ := fs.ReadFile(files, p)
		for _, re := range bad {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s: %q is not allowed by the page's rules", p, b[loc[0]:loc[1]])
			}
		}
		return nil
	})
}

// TestModulesResolve checks every module import names an embedded file, so
// a rename cannot leave the page broken with a 404.
func TestModulesResolve(t *testing.T) {
	imp := regexp.MustCompile(`from '\./([^']+)'`)
	for name, a := range assets {
		for _, m := range imp.FindAllSubmatch(a.body, -1) {
			if _, ok := assets[string(m[1])]; !ok {
				t.Errorf("%s imports %s, which is not embedded", name, m[1])
			}
		}
	}
}
