package dashboard_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/truegpu/truegpu/oracle/httpapi"
	"github.com/truegpu/truegpu/oracle/httpapi/apitest"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestDashboardFixture drives the page in Chromium against the REST API over
// fixed-data services: every page renders the data it is given, the table
// sorts and filters, the "why" of a rejected node links to its evidence, and a
// change on the watch stream updates the table live.
func TestDashboardFixture(t *testing.T) {
	exe := findBrowser(t)
	f := apitest.New()
	_, conn := apitest.Serve(t, f)
	h, err := httpapi.New(t.Context(), conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx := browser(t, exe)

	checkFleetPage(t, ctx, srv.URL, apitest.NumNodes)
	if got := eval[string](t, ctx, `document.getElementById("stat-rejected").textContent`); got != "6" {
		t.Errorf("rejected card says %q, want 6", got)
	}
	if got := eval[int](t, ctx, `document.querySelectorAll("#by-class tbody tr").length`); got != 6 {
		t.Errorf("%d class rows, want 6", got)
	}

	screenshot(t, ctx, "fixture-fleet.png", false)
	checkPaging(t, ctx, apitest.NumNodes)
	// A change on the watch stream reaches the table without a reload.
	waitFor(t, ctx, "the live stream", `document.getElementById("live").classList.contains("on")`)
	for f.WatcherCount() == 0 { // the headers may come before the call reaches the service
		if err := chromedp.Do(ctx, chromedp.Sleep(20*time.Millisecond)); err != nil {
			t.Fatal("the page's watch stream never reached the service")
		}
	}
	target := f.Addresses()[0]
	orig := f.Node(target)
	f.Publish(&truegpuv1.ScoreChange{Address: target, NewScoreBp: 1234, NewStatus: truegpuv1.NodeStatus_NODE_STATUS_SUSPECT,
		Reason: "LIVENESS_MISSED", AtUnixMs: apitest.BaseTime.UnixMilli()})
	row := `document.querySelector('#nodes-table tr[data-address="` + target + `"]')`
	waitFor(t, ctx, "the live change in the table",
		`(() => { const r = `+row+`; return r && r.querySelector(".badge").textContent === "suspect" && r.querySelector("td.score span").textContent === "12.34%" })()`)
	waitFor(t, ctx, "the live change in the change list", `document.querySelectorAll("#changes li a").length === 1`)
	// And back.
	f.Publish(&truegpuv1.ScoreChange{Address: target, NewScoreBp: orig.GetScoreBp(), NewStatus: orig.GetStatus(), AtUnixMs: apitest.BaseTime.UnixMilli()})
	waitFor(t, ctx, "the second live change", `document.querySelectorAll("#changes li a").length === 2`)

	rejected := filterRejected(t, ctx)
	if len(rejected) != apitest.NumRejected {
		t.Errorf("rejected filter shows %d rows, want %d", len(rejected), apitest.NumRejected)
	}

	// A node caught claiming a class it is not: reasons, evidence, timings.
	var fake *truegpuv1.NodeReputation
	for _, a := range rejected {
		n := f.Node(a)
		if n.GetReasons()[0].GetCode() == "CAPACITY_SLOW" {
			fake = n
			break
		}
	}
	if fake == nil {
		t.Fatal("fixture has no CAPACITY_SLOW node")
	}
	checkNodePage(t, ctx, srv.URL, fake.GetAddress(), "CAPACITY_SLOW", len(fake.GetRecentChallenges()), len(fake.GetDevices()))
	eval[chromedp.Void](t, ctx, `window.scrollTo(0, 0)`)
	waitFor(t, ctx, "the node's proof in the latest report", `document.querySelector("#node-proof dl") !== null`)
	screenshot(t, ctx, "fixture-node.png", false)

	// A duplicate identity links to the other node.
	for _, a := range rejected {
		n := f.Node(a)
		if n.GetReasons()[0].GetCode() != "IDENTITY_DUPLICATE" {
			continue
		}
		navigate(t, ctx, srv.URL+"/#/nodes/"+a)
		waitFor(t, ctx, "the duplicate's related node link", `document.querySelectorAll("#why .evidence a[href^='#/nodes/0x']:not(.evidence-link)").length === 1`)
		break
	}

	// Unknown node: a clear message, not an empty page.
	navigate(t, ctx, srv.URL+"/#/nodes/0x0000000000000000000000000000000000000001")
	waitFor(t, ctx, "the not-found message", `(document.querySelector(".error") || {}).textContent?.includes("is not registered")`)

	// Cluster page.
	navigate(t, ctx, srv.URL+"/#/cluster")
	waitFor(t, ctx, "the members table", `document.querySelectorAll("#members tbody tr").length === 3`)
	if got := eval[string](t, ctx, `document.getElementById("cluster-leader").textContent`); got != "oracle-1" {
		t.Errorf("leader %q, want oracle-1", got)
	}
	screenshot(t, ctx, "fixture-cluster.png", false)

	// Feed page: the newest report is still collecting signatures, so the
	// latest complete one is shown beside it.
	navigate(t, ctx, srv.URL+"/#/feed")
	waitFor(t, ctx, "the reports", `document.querySelectorAll("#report").length === 2`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll("#report")].map(r => r.dataset.epoch)`); len(got) != 2 || got[0] != "43" || got[1] != "42" {
		t.Errorf("reports shown for epochs %q, want 43 and 42", got)
	}
	if got := eval[int](t, ctx, `document.querySelectorAll("#signatures tbody tr").length`); got != 6 {
		t.Errorf("%d signer rows, want 3 per report", got)
	}
	navigate(t, ctx, srv.URL+"/#/feed?node="+fake.GetAddress())
	waitFor(t, ctx, "the node proof", `document.querySelectorAll("#proof-result ol li").length === 6`)
	screenshot(t, ctx, "fixture-feed.png", false)
}
