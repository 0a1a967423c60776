package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/truegpu/truegpu/oracle/devcluster"
)

// getJSON reads a REST resource.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

type apiNode struct {
	Address   string `json:"address"`
	Status    string `json:"status"`
	TopReason string `json:"topReason"`
}

// TestDashboardDevCluster drives the page in Chromium against a real
// development cluster (three Raft members, a simulated fleet of honest and
// adversarial nodes): once the oracle has caught some of the fakes, the table
// shows every node with the status the API reports, and a rejected node's
// page shows why.
func TestDashboardDevCluster(t *testing.T) {
	exe := findBrowser(t)
	if testing.Short() {
		t.Skip("starts a development cluster; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	fleet := devcluster.DefaultFleet()
	c, err := devcluster.Start(ctx, devcluster.Options{
		HTTPAddr:          "127.0.0.1:0",
		GRPCAddr:          "127.0.0.1:0",
		EpochInterval:     5 * time.Second,
		ChallengeInterval: 3 * time.Second,
		Fleet:             fleet,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("start dev cluster: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	base := c.Nodes[0].HTTPURL()
	want := fleet.Honest + len(fleet.Adversaries)

	// Wait until every node is registered, some fakes are rejected, the
	// oracle has applied a few dozen verdicts and an epoch report is signed.
	var nodes []apiNode
	for {
		var list struct {
			Nodes []apiNode `json:"nodes"`
		}
		var stats struct {
			TotalVerdicts string `json:"totalVerdicts"`
		}
		var latest struct {
			Report struct {
				Complete bool `json:"complete"`
			} `json:"report"`
		}
		err := getJSON(ctx, base+"/v1/nodes?pageSize=1000", &list)
		rejected := 0
		for _, n := range list.Nodes {
			if n.Status == "NODE_STATUS_REJECTED" {
				rejected++
			}
		}
		verdicts := 0
		if getJSON(ctx, base+"/v1/fleet", &stats) == nil {
			verdicts, _ = strconv.Atoi(stats.TotalVerdicts)
		}
		if err == nil && len(list.Nodes) == want && rejected >= 2 && verdicts >= 40 &&
			getJSON(ctx, base+"/v1/feed/latest", &latest) == nil && latest.Report.Complete {
			nodes = list.Nodes
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the dev cluster did not reach %d nodes, 2 rejected, 40 verdicts and a signed report: last error %v, %d nodes, %d rejected, %d verdicts",
				want, err, len(list.Nodes), rejected, verdicts)
		case <-time.After(time.Second):
		}
	}

	bctx := browser(t, exe)
	checkFleetPage(t, bctx, base, want)
	// Statuses change while the page runs: each row must show the status
	// the API reported before or after the page was read.
	rows := eval[[][]string](t, bctx, `[...`+rowsJS+`].map(tr => [tr.dataset.address, tr.querySelector(".badge").textContent])`)
	var after struct {
		Nodes []apiNode `json:"nodes"`
	}
	if err := getJSON(ctx, base+"/v1/nodes?pageSize=1000", &after); err != nil {
		t.Fatal(err)
	}
	statuses := map[string][]string{}
	for _, n := range append(nodes, after.Nodes...) {
		statuses[n.Address] = append(statuses[n.Address], strings.ToLower(strings.TrimPrefix(n.Status, "NODE_STATUS_")))
	}
	for _, r := range rows {
		if st, ok := statuses[r[0]]; !ok {
			t.Errorf("table row %s is not a node of the API", r[0])
		} else if !slices.Contains(st, r[1]) {
			t.Errorf("row %s shows %q; the API said %q", r[0], r[1], st)
		}
	}
	// Reload (the fleet check left the table sorted by score) for the
	// screenshots.
	navigate(t, bctx, base+"/#/cluster")
	waitFor(t, bctx, "the members table", `document.querySelectorAll("#members tbody tr").length === 3`)
	screenshot(t, bctx, "cluster.png", true)
	navigate(t, bctx, base+"/#/")
	waitFor(t, bctx, "the node table", fmt.Sprintf(`%s.length === %d`, rowsJS, want))
	waitFor(t, bctx, "the fakes chart", `document.querySelector("#fakes-chart canvas") !== null`)
	screenshot(t, bctx, "fleet.png", true)

	rejected := filterRejected(t, bctx)
	if len(rejected) == 0 {
		t.Fatal("no rejected rows")
	}
	// A rejected node's page: the reason and its evidence.
	var node struct {
		Node struct {
			Reasons []struct {
				Code string `json:"code"`
			} `json:"reasons"`
			RecentChallenges []json.RawMessage `json:"recentChallenges"`
			Devices          []json.RawMessage `json:"devices"`
		} `json:"node"`
	}
	target := rejected[0]
	if err := getJSON(ctx, base+"/v1/nodes/"+target, &node); err != nil {
		t.Fatal(err)
	}
	if len(node.Node.Reasons) == 0 {
		t.Fatalf("rejected node %s has no reasons in the API", target)
	}
	// The history can grow while the page loads, so count what the page
	// got: it must show every challenge of the response it rendered.
	checkNodePage(t, bctx, base, target, node.Node.Reasons[0].Code, -1, len(node.Node.Devices))
	eval[chromedp.Void](t, bctx, `window.scrollTo(0, 0)`)
	screenshot(t, bctx, "node.png", true)

	navigate(t, bctx, base+"/#/feed")
	waitFor(t, bctx, "the signed report", `document.querySelectorAll("#signatures tbody tr").length >= 3`)
	screenshot(t, bctx, "feed.png", true)
}
