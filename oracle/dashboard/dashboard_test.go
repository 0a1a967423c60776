package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/oracle/dashboard"
)

func TestHandler(t *testing.T) {
	h := dashboard.Handler()
	tests := []struct {
		method, path string
		wantStatus   int
		wantType     string
		wantBody     string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script type="module" src="/ui/app.js">`},
		{"GET", "/index.html", 200, "text/html; charset=utf-8", "<title>TrueGPU oracle</title>"},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/ui/app.js", 200, "text/javascript; charset=utf-8", `from "./live.js"`},
		{"GET", "/ui/api.js", 200, "text/javascript; charset=utf-8", "/v1/watch/scores"},
		{"GET", "/ui/app.css", 200, "text/css; charset=utf-8", "--trusted"},
		{"GET", "/ui/vendor/uPlot.iife.min.js", 200, "text/javascript; charset=utf-8", "uPlot"},
		{"GET", "/ui/vendor/uPlot.LICENSE", 200, "", "MIT"},
		{"GET", "/ui/", 404, "", ""},
		{"GET", "/ui/index.html", 404, "", ""},
		{"GET", "/ui/../dashboard.go", 404, "", ""},
		{"GET", "/static/app.js", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://127.0.0.1"+tt.path, nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantType != "" && rec.Header().Get("Content-Type") != tt.wantType {
				t.Errorf("Content-Type %q, want %q", rec.Header().Get("Content-Type"), tt.wantType)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body lacks %q", tt.wantBody)
			}
		})
	}
}

func TestSecurityHeadersAndCaching(t *testing.T) {
	srv := httptest.NewServer(dashboard.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation answered %d, want 304", resp.StatusCode)
	}
}

// TestPageUsesOnlyLocalAssets checks that the page loads nothing from other
// origins (the CSP would block it) and no inline script.
func TestPageUsesOnlyLocalAssets(t *testing.T) {
	rec := httptest.NewRecorder()
	dashboard.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(string(body), -1) {
		u := m[1]
		if !strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "#") && u != "data:," {
			t.Errorf("page references %q outside its origin", u)
		}
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).Match(body) {
		t.Error("page has an inline script")
	}
}

// TestModulesResolve follows the page's module scripts and their relative
// imports: each must be served as JavaScript (browsers refuse a module of
// another type), and every module in static/ must be reached.
func TestModulesResolve(t *testing.T) {
	h := dashboard.Handler()
	get := func(p string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		return rec
	}
	page := get("/").Body.String()
	var queue []string
	for _, m := range regexp.MustCompile(`<script type="module" src="([^"]+)">`).FindAllStringSubmatch(page, -1) {
		queue = append(queue, m[1])
	}
	if len(queue) != 1 {
		t.Fatalf("page has %d module scripts, want 1: %q", len(queue), queue)
	}
	importRE := regexp.MustCompile(`(?m)^import (?:[^"]* from )?"([^"]+)";`)
	seen := map[string]bool{}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if seen[u] {
			continue
		}
		seen[u] = true
		rec := get(u)
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d", u, rec.Code)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
			t.Errorf("%s: Content-Type %q, want text/javascript", u, ct)
		}
		for _, m := range importRE.FindAllStringSubmatch(rec.Body.String(), -1) {
			if !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s imports %q, not a relative path", u, m[1])
				continue
			}
			queue = append(queue, path.Join(path.Dir(u), m[1]))
		}
	}
	entries, err := os.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if u := dashboard.AssetPrefix + e.Name(); strings.HasSuffix(e.Name(), ".js") && !seen[u] {
			t.Errorf("module %s is not imported by the page", u)
		}
	}
	if !seen["/ui/api.js"] {
		t.Errorf("the page's modules do not reach api.js: %v", seen)
	}
}
