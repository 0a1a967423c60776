package fsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/truegpu/truegpu/reputation"
)

// TestConfigRecorded: the state records the replicated configuration it
// was created with; reopening it under other values, or restoring a
// snapshot made under other values, is refused with the settings named,
// and a refused restore leaves the state as it was.
func TestConfigRecorded(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := newGen(5)
	for i := range 20 {
		f.Apply(entry(t, uint64(i+1), g.next()))
	}
	snap := snapshotBytes(t, f)
	f.Close()

	if f, err = Open(dir, Config{}); err != nil {
		t.Fatalf("reopen under the same configuration: %v", err)
	}
	f.Close()
	for _, c := range []struct {
		cfg  Config
		name string
	}{
		{Config{MaxReasons: 9}, "max-reasons 8, now 9"},
		{Config{RetainEpochs: 3}, "retain-epochs"},
		{Config{ReportLifetime: 3*time.Hour + time.Second}, "report-lifetime-ms"},
		{Config{ParamsDigest: [32]byte{1}}, "params-digest"},
		{Config{Domain: reputation.NewDomain(5, [20]byte{})}, "domain"},
		{Config{Model: modelWith(t, func(p *reputation.Params) { p.HalfLifeMs++ })}, "model-params"},
	} {
		g, err := Open(dir, c.cfg)
		if err == nil {
			g.Close()
		}
		if !errors.Is(err, ErrConfigMismatch) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("reopen under %s: %v, want ErrConfigMismatch naming it", c.name, err)
		}
	}

	// A tool reading a stopped member's state opens it whatever its values.
	in, err := Inspect(dir)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if in.AppliedIndex() != 20 {
		t.Fatalf("Inspect: applied index %d, want 20", in.AppliedIndex())
	}
	in.Close()

	other, err := Open(t.TempDir(), Config{MaxReasons: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.Apply(entry(t, 1, newGen(6).next()))
	h := mustHash(t, other)
	if err := other.Restore(io.NopCloser(bytes.NewReader(snap))); !errors.Is(err, ErrConfigMismatch) {
		t.Fatalf("restore of a snapshot made under other values: %v, want ErrConfigMismatch", err)
	}
	if mustHash(t, other) != h {
		t.Fatal("a refused restore changed the state")
	}
	same, err := Open(t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	if err := same.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("restore under the same values: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{{MaxReasons: -1}, {ReportLifetime: -time.Second}} {
		if _, err := Open(t.TempDir(), cfg); err == nil || !strings.Contains(err.Error(), "must not be negative") {
			t.Errorf("Open(%+v): %v, want a refusal of the negative value", cfg, err)
		}
	}
}

func modelWith(t *testing.T, edit func(*reputation.Params)) *reputation.Model {
	t.Helper()
	p := reputation.DefaultParams()
	edit(&p)
	m, err := reputation.NewModel(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
