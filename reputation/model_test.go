package reputation

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// t0 is the base time of the scripts: times in scripts are offsets from it.
const t0 = uint64(1_700_000_000_000)

// parseOffset parses "0", "90s", "15m", "2h", "3d", "250ms" into milliseconds.
func parseOffset(t *testing.T, s string) uint64 {
	t.Helper()
	units := []struct {
		suffix string
		ms     uint64
	}{{"ms", 1}, {"s", 1000}, {"m", 60_000}, {"h", 3_600_000}, {"d", 86_400_000}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseUint(num, 10, 64)
			if err == nil {
				return n * u.ms
			}
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("bad time offset %q", s)
	}
	return n
}

type harness struct {
	t      *testing.T
	model  *Model
	nodes  map[string]NodeState
	addrs  map[string]ethcrypto.Address
	byAddr map[ethcrypto.Address]string
}

func newHarness(t *testing.T) *harness {
	m, err := NewModel(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, model: m, nodes: map[string]NodeState{}, addrs: map[string]ethcrypto.Address{}, byAddr: map[ethcrypto.Address]string{}}
}

func (h *harness) addr(name string) ethcrypto.Address {
	a, ok := h.addrs[name]
	if !ok {
		a = ethcrypto.KeyFromSeed([]byte("reputation-test/" + name)).Address()
		h.addrs[name] = a
		h.byAddr[a] = name
	}
	return a
}

// names replaces node addresses in s by their script names.
func (h *harness) names(s string) string {
	for a, n := range h.byAddr {
		s = strings.ReplaceAll(s, a.String(), n)
	}
	return s
}

func fingerprint(s string) [32]byte { return ethcrypto.Keccak256([]byte(s)) }

func parseDevices(t *testing.T, vals []string) []Device {
	var out []Device
	for _, v := range vals {
		uuid, fp, ok := strings.Cut(v, ":")
		if !ok {
			t.Fatalf("device %q: want UUID:fingerprint", v)
		}
		out = append(out, Device{UUID: uuid, Fingerprint: fingerprint(fp)})
	}
	return out
}

// apply applies ev to node, checking the state encoding round-trips.
func (h *harness) apply(node string, ev Event) error {
	h.addr(node)
	st, err := h.model.Apply(h.nodes[node], ev)
	if err != nil {
		return err
	}
	b, err := st.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	var back NodeState
	if err := back.UnmarshalBinary(b); err != nil {
		h.t.Fatalf("state does not round-trip: %v", err)
	}
	if !reflect.DeepEqual(back, st) {
		h.t.Fatalf("state round-trip differs:\n%+v\n%+v", back, st)
	}
	h.nodes[node] = st
	return nil
}

func (h *harness) brief(node string, at uint64) string {
	v := h.model.View(h.nodes[node], at)
	return fmt.Sprintf("%s: status=%s score=%d\n", node, v.Status, v.Score)
}

func milli(v uint64) string { return fmt.Sprintf("%d.%03d", v/Unit, v%Unit) }

func (h *harness) full(node string, at uint64) string {
	v := h.model.View(h.nodes[node], at)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: status=%s score=%d\n", node, v.Status, v.Score)
	for d := range NumDimensions {
		dv := v.Dimensions[d]
		fmt.Fprintf(&b, "  %-11s score=%-5d rate=%-5d conf=%-5d pos=%s neg=%s\n", d, dv.Score, dv.Rate, dv.Confidence, milli(dv.Pos), milli(dv.Neg))
	}
	for _, f := range v.Findings {
		dim := f.Dimension.String()
		if f.Reason == ReasonScoreBelowTrust {
			dim = "overall"
		}
		fmt.Fprintf(&b, "  finding %s %s: %s\n", f.Reason, dim, strings.Join(f.Evidence, " "))
	}
	return h.names(b.String())
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	str := func(key string) string {
		var v string
		if d.HasArg(key) {
			d.ScanArgs(t, key, &v)
		}
		return v
	}
	num := func(key string, def uint64) uint64 {
		if !d.HasArg(key) {
			return def
		}
		var v uint64
		d.ScanArgs(t, key, &v)
		return v
	}
	at := func() uint64 { return t0 + parseOffset(t, str("at")) }
	node := str("node")
	var out strings.Builder
	report := func(err error, n string, when uint64) {
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n", err)
			return
		}
		out.WriteString(h.brief(n, when))
	}
	switch d.Cmd {
	case "params":
		p := DefaultParams()
		for _, arg := range d.CmdArgs {
			v, err := strconv.ParseUint(arg.Vals[0], 10, 64)
			if err != nil {
				t.Fatalf("params %s: %v", arg.Key, err)
			}
			switch arg.Key {
			case "half-life":
				p.HalfLifeMs = parseOffset(t, arg.Vals[0])
			case "k":
				p.ConfidenceK = v * Unit
			case "max-penalties":
				p.MaxPenalties = uint32(v)
			default:
				t.Fatalf("unknown param %s", arg.Key)
			}
		}
		m, err := NewModel(p)
		if err != nil {
			return fmt.Sprintf("error: %v\n", err)
		}
		h.model = m
		return "ok\n"
	case "register":
		var devs []string
		d.ScanArgs(t, "devices", &devs)
		ev := Event{Kind: EventRegistered, At: at(), Devices: parseDevices(t, devs)}
		report(h.apply(node, ev), node, ev.At)
	case "accept":
		// n accepted verdicts, every apart, from at, challenge ids prefix1..n.
		n, every := num("n", 1), uint64(0)
		if d.HasArg("every") {
			every = parseOffset(t, str("every"))
		}
		start := at()
		var last uint64
		for i := uint64(0); i < n; i++ {
			ev := Event{Kind: EventVerdictAccepted, At: start + i*every, Challenge: fmt.Sprintf("%s%d", str("challenge"), i+1),
				Device: str("device"), ElapsedMs: num("elapsed", 100), ExpectedMs: num("expected", 100)}
			if n == 1 {
				ev.Challenge = str("challenge")
			}
			if err := h.apply(node, ev); err != nil {
				report(err, node, 0)
				return out.String()
			}
			last = ev.At
		}
		report(nil, node, last)
	case "reject":
		ev := Event{Kind: EventVerdictRejected, At: at(), Challenge: str("challenge"), Verdict: str("verdict"), Device: str("device"), Reason: Reason(str("reason"))}
		report(h.apply(node, ev), node, ev.At)
	case "miss":
		n, every := num("n", 1), uint64(0)
		if d.HasArg("every") {
			every = parseOffset(t, str("every"))
		}
		start := at()
		for i := uint64(0); i < n; i++ {
			ev := Event{Kind: EventChallengeMissed, At: start + i*every, Challenge: str("challenge"), Device: str("device")}
			if n > 1 {
				ev.Challenge = fmt.Sprintf("%s%d", str("challenge"), i+1)
			}
			if err := h.apply(node, ev); err != nil {
				report(err, node, 0)
				return out.String()
			}
		}
		report(nil, node, start+(n-1)*every)
	case "duplicate", "resolve":
		var names []string
		d.ScanArgs(t, "nodes", &names)
		var addrs []ethcrypto.Address
		for _, n := range names {
			addrs = append(addrs, h.addr(n))
		}
		kind := EventDuplicateIdentity
		if d.Cmd == "resolve" {
			kind = EventDuplicateResolved
		}
		ev := Event{Kind: kind, At: at(), Identity: str("identity"), Nodes: addrs, Device: str("device")}
		for _, n := range names {
			report(h.apply(n, ev), n, ev.At)
		}
	case "decide":
		// Decide the contest for identity among nodes and apply the
		// decisions as the state machine does.
		var names []string
		d.ScanArgs(t, "nodes", &names)
		states := make([]NodeState, len(names))
		for i, n := range names {
			h.addr(n)
			states[i] = h.nodes[n]
		}
		when := at()
		for i, dec := range DecideConflict(str("identity"), states) {
			n := names[i]
			var err error
			switch dec {
			case Wins:
				err = h.apply(n, Event{Kind: EventDuplicateResolved, At: when, Identity: str("identity")})
			case Loses:
				err = h.apply(n, Event{Kind: EventDuplicateDecided, At: when, Identity: str("identity"), Reason: ReasonIdentityDuplicateLost})
			case Clone:
				err = h.apply(n, Event{Kind: EventDuplicateDecided, At: when, Identity: str("identity"), Reason: ReasonIdentityDuplicate})
			}
			fmt.Fprintf(&out, "%s %s; ", n, dec)
			report(err, n, when)
		}
	case "device-changed":
		var devs []string
		d.ScanArgs(t, "new", &devs)
		ev := Event{Kind: EventDeviceChanged, At: at(), Device: str("old"), Devices: parseDevices(t, devs)}
		report(h.apply(node, ev), node, ev.At)
	case "view":
		return h.full(node, at())
	case "penalties":
		for _, p := range h.nodes[node].Penalties {
			fmt.Fprintf(&out, "+%dms %s %s weight=%s %s\n", p.At-t0, p.Dimension, p.Reason, milli(p.Weight), strings.Join(p.Evidence, " "))
		}
		if out.Len() == 0 {
			return "none\n"
		}
		return h.names(out.String())
	default:
		t.Fatalf("unknown command %q", d.Cmd)
	}
	return out.String()
}

func TestModelScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/model", func(t *testing.T, path string) {
		h := newHarness(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	})
}

func TestSplitRef(t *testing.T) {
	for _, c := range []struct{ ref, kind, value string }{
		{RefChallenge + "0x01", RefChallenge, "0x01"},
		{RefIdentity + "uuid:GPU-1", RefIdentity, "uuid:GPU-1"},
		{RefTiming + "1250ms/1000ms", RefTiming, "1250ms/1000ms"},
		{RefTypicalTiming + "10400", RefTypicalTiming, "10400"},
		{RefNode, RefNode, ""},
	} {
		kind, value, ok := SplitRef(c.ref)
		if !ok || kind != c.kind || value != c.value {
			t.Errorf("SplitRef(%q) = %q, %q, %v; want %q, %q", c.ref, kind, value, ok, c.kind, c.value)
		}
	}
	if kind, value, ok := SplitRef("elsewhere:1"); ok || kind != "" || value != "elsewhere:1" {
		t.Errorf("unknown prefix: %q, %q, %v", kind, value, ok)
	}
}
