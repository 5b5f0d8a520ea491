// Package ui is the operator's web page: static HTML, CSS and JavaScript
// modules embedded in the binary, so `go build` alone makes a complete
// server. The page talks only to the public REST API and its event stream.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed static
var files embed.FS

// asset is one embedded file, read once with its validator and type.
type asset struct {
	body  []byte
	etag  string
	ctype string
}

// assets maps a file name under static/ to its content; built at init, since
// the embedded files never change while the binary runs.
var assets = loadAssets()

func loadAssets() map[string]asset {
	out := map[string]asset{}
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: contentType(p)}
		return nil
	})
	if err != nil {
		panic(err)
	}
	return out
}

// contentType is fixed here rather than left to the OS mime tables, which
// differ between machines (some map .js to text/plain, which nosniff blocks).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Handler serves the page at / and its files at /assets/<file>.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	name, ok := assetName(r.URL.Path)
	a, found := assets[name]
	if !ok || !found {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	// Revalidate every time: a 304 costs one round trip and a new binary's
	// assets are never mixed with an old cached copy.
	h.Set("Cache-Control", "no-cache")
	if etagMatches(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(a.body)
	}
}

// assetName maps a request path to an embedded file; ok is false for paths
// outside the page.
func assetName(p string) (string, bool) {
	if p == "/" {
		return "index.html", true
	}
	name, ok := strings.CutPrefix(p, "/assets/")
	if !ok || name == "" || strings.Contains(name, "..") {
		return "", false
	}
	return name, true
}

// etagMatches implements If-None-Match's weak comparison over a list.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
