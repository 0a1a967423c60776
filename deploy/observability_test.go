package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/truegpu/truegpu/oracle/devcluster"
)

// dashboard is the part of a Grafana dashboard the test checks.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// metricRef matches metric names and recording-rule names in PromQL.
var metricRef = regexp.MustCompile(`\btruegpu(?:_[A-Za-z0-9_]+|(?::[A-Za-z0-9_]+)+)\b`)

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/truegpu-oracle.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/truegpu-oracle.json: %v", err)
	}
	return d
}

func loadRules(t *testing.T, path string) ruleFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rf
}

// TestDashboardShape checks the dashboard's structure without a server:
// unique panel ids, positions inside the 24-column grid, every query panel
// on the ${datasource} variable with at least one expression.
func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard lacks uid, title or panels: %+v", d)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "datasource") || !slices.Contains(vars, "member") {
		t.Errorf("template variables %v; want datasource and member", vars)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: query %q with refId %q", p.Title, tg.Expr, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
}

// TestDashboardAndRulesMatchExportedMetrics scrapes a real member's
// /metrics and checks that every metric the dashboard's panels and the
// rule file's expressions name is one the member exports, and every
// recording rule a panel uses is defined.
func TestDashboardAndRulesMatchExportedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a development cluster; skipped with -short")
	}
	d := loadDashboard(t)
	rf := loadRules(t, "prometheus/truegpu-rules.yml")
	recorded := map[string]bool{}
	type use struct{ where, expr string }
	var uses []use
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
			uses = append(uses, use{fmt.Sprintf("rule %s%s in group %s", r.Record, r.Alert, g.Name), r.Expr})
		}
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			uses = append(uses, use{fmt.Sprintf("panel %q query %s", p.Title, tg.RefID), tg.Expr})
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	c, err := devcluster.Start(ctx, devcluster.Options{
		Members: 3, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard,
	})
	if err != nil {
		t.Fatalf("start dev cluster: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	l, err := c.WaitLeader(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// Raft's own timers appear once the leader has committed entries (the
	// members' rows of the member table): poll until they do.
	var families map[string]*dto.MetricFamily
	for {
		families = scrape(t, l.HTTPURL()+"/metrics")
		if families["truegpu_raft_commitTime"] != nil && families["truegpu_raft_leader_dispatchLog"] != nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the leader's /metrics never showed Raft's timers; it has %v", names(families))
		case <-time.After(200 * time.Millisecond):
		}
	}
	// HTTP request metrics have a series once a request was served: the
	// scrapes above.
	families = scrape(t, l.HTTPURL()+"/metrics")
	exported := func(name string) bool {
		if families[name] != nil {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(name, suffix)
			if f := families[base]; ok && f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return true
			}
		}
		return false
	}
	for _, u := range uses {
		refs := metricRef.FindAllString(u.expr, -1)
		if len(refs) == 0 {
			t.Errorf("%s names no truegpu metric: %s", u.where, u.expr)
		}
		for _, name := range refs {
			switch {
			case strings.Contains(name, ":"):
				if !recorded[name] {
					t.Errorf("%s uses recording rule %s, which prometheus/truegpu-rules.yml does not define", u.where, name)
				}
			case !exported(name):
				t.Errorf("%s uses %s, which a member does not export", u.where, name)
			}
		}
	}
	// Every member labels its own series.
	for _, n := range c.Nodes {
		fam := scrape(t, n.HTTPURL()+"/metrics")["truegpu_oracle_applied_index"]
		if fam == nil || len(fam.Metric) != 1 || labelOf(fam.Metric[0], "member") != n.ID {
			t.Errorf("%s: truegpu_oracle_applied_index %v, want one series labelled member=%q", n.ID, fam, n.ID)
		}
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

func names(f map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range f {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
