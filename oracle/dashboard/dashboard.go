// Package dashboard is the web page every oracle member serves at "/": the
// fleet at a glance, a sortable and filterable node table, node pages with the
// reasons and evidence behind a node's status, the cluster, and the latest
// signed epoch report.
//
// The page is plain HTML, CSS and JavaScript modules embedded in the binary
// (no frontend build step: static/app.js imports the other modules by
// relative path) and reads only the public REST API under /v1, so it
// shows exactly what any API consumer can see. It updates live from the
// GET /v1/watch/scores stream and falls back to polling when the stream is
// unavailable. Charts use the vendored uPlot library (MIT, see
// static/vendor/uPlot.LICENSE).
//
// This package owns the page and its assets only; package httpapi mounts it
// next to the REST API.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// AssetPrefix is the URL path under which the page's assets are served.
const AssetPrefix = "/ui/"

// contentSecurityPolicy allows only the page's own scripts and API. Inline
// style attributes are allowed for computed bar widths; inline scripts are
// not.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// contentTypes fixes the types of the page's own files, whatever the
// host's MIME tables say: browsers refuse to run a module script (app.js and
// the modules it imports) that is not served with a JavaScript type.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
}

type asset struct {
	body        []byte
	etag        string
	contentType string
}

// Handler returns the dashboard: the page at "/" and its assets under
// AssetPrefix. Any other path answers 404.
func Handler() http.Handler {
	assets := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := contentTypes[path.Ext(p)]
		if ct == "" {
			ct = mime.TypeByExtension(path.Ext(p))
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[strings.TrimPrefix(p, "static/")] = asset{
			body:        body,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
			contentType: ct,
		}
		return nil
	})
	if err != nil {
		// The files are embedded at build time; failing to read them is a
		// build defect, not a runtime condition.
		panic("dashboard: read embedded assets: " + err.Error())
	}
	return &handler{assets: assets}
}

type handler struct {
	assets map[string]asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var name string
	switch {
	case r.URL.Path == "/" || r.URL.Path == "/index.html":
		name = "index.html"
	case strings.HasPrefix(r.URL.Path, AssetPrefix):
		name = strings.TrimPrefix(r.URL.Path, AssetPrefix)
		if name == "index.html" {
			name = ""
		}
	}
	a, ok := h.assets[name]
	if !ok || name == "" {
		http.Error(w, "404 page not found: the dashboard is at /", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if name == "index.html" {
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
