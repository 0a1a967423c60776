package deploy

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/truegpu/truegpu/relay"
)

// TestRelayRulesNameRelayMetrics: every metric the relayer's alert rules
// use is one the relayer exports (a renamed metric would leave an alert
// that can never fire).
func TestRelayRulesNameRelayMetrics(t *testing.T) {
	rf := loadRules(t, "prometheus/truegpu-relay-rules.yml")
	reg := prometheus.NewRegistry()
	m := relay.NewMetrics(reg)
	m.Skipped.WithLabelValues("on_chain")
	m.Failed.WithLabelValues("reverted")
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range fams {
		exported[f.GetName()] = true
	}
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			refs := metricRef.FindAllString(r.Expr, -1)
			if len(refs) == 0 {
				t.Errorf("rule %q names no truegpu metric: %s", r.Alert, r.Expr)
			}
			for _, name := range refs {
				n++
				if !exported[name] {
					t.Errorf("rule %q uses %s, which the relayer does not export", r.Alert, name)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules read")
	}
}
