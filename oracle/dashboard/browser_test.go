package dashboard_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var updateScreenshots = flag.Bool("update-screenshots", false,
	"write docs/screenshots/*.png from the browser test (also TRUEGPU_UPDATE_SCREENSHOTS=1)")

// findBrowser returns a Chromium binary or skips the test when none is
// installed.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium binary found on PATH (looked for chromium, chromium-browser, google-chrome); " +
		"install it with: apt-get install -y chromium")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a tab
// context. JavaScript exceptions on the page fail the test at its end.
func browser(t *testing.T, execPath string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // runs as root in a sandboxed machine
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 1000)); err != nil {
		t.Fatalf("start %s: %v", execPath, err)
	}

	var mu sync.Mutex
	var jsErrors []string
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil && ev.ExceptionDetails.Exception.Description != "" {
				msg = ev.ExceptionDetails.Exception.Description
			}
			mu.Lock()
			jsErrors = append(jsErrors, msg)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range jsErrors {
			t.Errorf("JavaScript exception on the page: %s", e)
		}
	})
	return ctx
}

// waitFor polls a JavaScript predicate until it is truthy.
func waitFor(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("app").innerText.slice(0, 2000)`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, html)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// click clicks the element selector names, found and clicked in one
// step in the page: the fleet table is rendered again whenever a live
// change arrives, so an element found by one protocol call may be gone by
// the next.
func click(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	if !eval[bool](t, ctx, `(() => { const e = document.querySelector(`+jsString(selector)+`); if (!e) return false; e.click(); return true; })()`) {
		t.Fatalf("no element %s to click", selector)
	}
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
}

// screenshot saves a full-page PNG under $TRUEGPU_ARTIFACTS (or the test's
// temporary directory) and, for docs screenshots when asked to
// (-update-screenshots), under docs/screenshots.
func screenshot(t *testing.T, ctx context.Context, name string, docs bool) {
	t.Helper()
	// Let charts finish drawing and the flash animation end.
	if err := chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("TRUEGPU_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
	if docs && (*updateScreenshots || os.Getenv("TRUEGPU_UPDATE_SCREENSHOTS") == "1") {
		docs := filepath.Join("..", "..", "docs", "screenshots", name)
		if err := os.MkdirAll(filepath.Dir(docs), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(docs, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", docs)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return fmt.Sprintf("%q", s)
}

const rowsJS = `document.querySelectorAll("#nodes-table tbody tr")`

// checkFleetPage checks the fleet page against wantNodes rows.
func checkFleetPage(t *testing.T, ctx context.Context, base string, wantNodes int) {
	t.Helper()
	navigate(t, ctx, base+"/#/")
	waitFor(t, ctx, "the node table", fmt.Sprintf(`%s.length >= %d`, rowsJS, wantNodes))
	waitFor(t, ctx, "the fleet stats", `document.getElementById("stat-total") !== null`)
	waitFor(t, ctx, "the fakes chart", `document.querySelector("#fakes-chart canvas") !== null`)

	if got := eval[int](t, ctx, rowsJS+`.length`); got != wantNodes {
		t.Errorf("table has %d rows, want %d", got, wantNodes)
	}
	if got := eval[string](t, ctx, `document.getElementById("stat-total").textContent`); got != fmt.Sprint(wantNodes) {
		t.Errorf("total nodes card says %q, want %d", got, wantNodes)
	}
	// Every row links to its node page and shows a status and a percentage.
	bad := eval[[]string](t, ctx, `[...`+rowsJS+`].filter(tr =>
		!tr.querySelector("a[href^='#/nodes/0x']") ||
		!/^(trusted|probation|suspect|rejected)$/.test(tr.querySelector(".badge").textContent) ||
		!/^\d+\.\d\d%$/.test(tr.querySelector("td.score span").textContent)).map(tr => tr.innerText)`)
	if len(bad) > 0 {
		t.Errorf("malformed rows: %q", bad)
	}

	// Ordering by score (descending on the first click), done by the server.
	click(t, ctx, `th[data-sort="score"]`)
	waitFor(t, ctx, "the table ordered by score", `document.getElementById("nodes-table").dataset.order === "score desc"`)
	scores := eval[[]float64](t, ctx, `[...`+rowsJS+`].map(tr => parseFloat(tr.querySelector("td.score span").textContent))`)
	for i := 1; i < len(scores); i++ {
		if scores[i] > scores[i-1] {
			t.Errorf("after sorting by score, row %d (%v) > row %d (%v)", i, scores[i], i-1, scores[i-1])
			break
		}
	}
}

// setSelect picks a value of a select element and fires its change event.
func setSelect(t *testing.T, ctx context.Context, id, value string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID(id), value)); err != nil {
		t.Fatal(err)
	}
	eval[chromedp.Void](t, ctx, `document.getElementById(`+jsString(id)+`).dispatchEvent(new Event("change"))`)
}

// checkPaging pages through the fleet table 25 rows at a time (wantNodes
// between 26 and 50): two pages without a node in common, the count line,
// and back; it leaves 100 rows a page.
func checkPaging(t *testing.T, ctx context.Context, wantNodes int) {
	t.Helper()
	addrs := `[...` + rowsJS + `].map(tr => tr.dataset.address)`
	setSelect(t, ctx, "f-size", "25")
	waitFor(t, ctx, "a page of 25", rowsJS+`.length === 25`)
	first := eval[[]string](t, ctx, addrs)
	click(t, ctx, "#page-next")
	waitFor(t, ctx, "the second page", `document.getElementById("nodes-table").dataset.page === "2"`)
	second := eval[[]string](t, ctx, addrs)
	if len(second) != wantNodes-25 {
		t.Errorf("second page has %d rows, want %d", len(second), wantNodes-25)
	}
	for _, a := range second {
		if slices.Contains(first, a) {
			t.Errorf("node %s on both pages", a)
		}
	}
	if got, want := eval[string](t, ctx, `document.getElementById("node-count").textContent`), fmt.Sprintf("26–%d of %d nodes", wantNodes, wantNodes); got != want {
		t.Errorf("count line %q, want %q", got, want)
	}
	if !eval[bool](t, ctx, `document.getElementById("page-next").disabled`) {
		t.Error("Next is enabled on the last page")
	}
	click(t, ctx, "#page-prev")
	waitFor(t, ctx, "the first page again", `document.getElementById("nodes-table").dataset.page === "1"`)
	if again := eval[[]string](t, ctx, addrs); !slices.Equal(again, first) {
		t.Errorf("first page again: %q, before %q", again, first)
	}
	setSelect(t, ctx, "f-size", "100")
	waitFor(t, ctx, "every node on one page", fmt.Sprintf(`%s.length === %d`, rowsJS, wantNodes))
}

// filterRejected selects status=rejected and returns the rows' addresses.
func filterRejected(t *testing.T, ctx context.Context) []string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("f-status"), "rejected")); err != nil {
		t.Fatal(err)
	}
	eval[chromedp.Void](t, ctx, `document.getElementById("f-status").dispatchEvent(new Event("change"))`)
	waitFor(t, ctx, "the rejected filter", `[...`+rowsJS+`].length > 0 && [...`+rowsJS+`].every(tr => tr.querySelector(".badge").textContent === "rejected")`)
	return eval[[]string](t, ctx, `[...`+rowsJS+`].map(tr => tr.dataset.address)`)
}

// checkNodePage opens a node page and checks that it shows the node's
// reasons with evidence links, challenge history, timing chart and devices.
func checkNodePage(t *testing.T, ctx context.Context, base, address string, wantReason string, wantChallenges, wantDevices int) {
	t.Helper()
	navigate(t, ctx, base+"/#/nodes/"+address)
	waitFor(t, ctx, "the node page", `document.getElementById("node-address") !== null`)
	waitFor(t, ctx, "the timing chart", `document.querySelector("#timing-chart canvas") !== null`)
	if got := eval[string](t, ctx, `document.getElementById("node-address").textContent`); !strings.EqualFold(got, address) {
		t.Errorf("node page shows %q, want %q", got, address)
	}
	if wantReason != "" {
		codes := eval[[]string](t, ctx, `[...document.querySelectorAll("#why .reason")].map(r => r.dataset.code)`)
		found := false
		for _, c := range codes {
			found = found || c == wantReason
		}
		if !found {
			t.Errorf("reasons %q lack %s", codes, wantReason)
		}
	}
	// wantChallenges < 0: at least one (a live node's history grows).
	if got := eval[int](t, ctx, `document.querySelectorAll("#challenges tbody tr").length`); got != wantChallenges && (wantChallenges >= 0 || got == 0) {
		t.Errorf("challenge history has %d rows, want %d", got, wantChallenges)
	}
	if got := eval[int](t, ctx, `document.querySelectorAll(".device").length`); got != wantDevices {
		t.Errorf("%d device cards, want %d", got, wantDevices)
	}
	if got := eval[string](t, ctx, `document.getElementById("node-score").textContent`); !strings.HasSuffix(got, "%") {
		t.Errorf("score %q is not a percentage", got)
	}
	// Evidence links lead to the challenge row, highlighted.
	if eval[int](t, ctx, `document.querySelectorAll("#why a.evidence-link").length`) > 0 {
		id := eval[string](t, ctx, `new URLSearchParams(document.querySelector("#why a.evidence-link").getAttribute("href").split("?")[1]).get("c")`)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#why a.evidence-link`))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the evidence challenge to be highlighted",
			`(() => { const r = document.querySelector("#challenges tr.highlight"); return r && r.dataset.challenge === `+jsString(id)+` })()`)
	}
}
