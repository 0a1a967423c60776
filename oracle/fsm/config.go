package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/truegpu/truegpu/reputation"
)

// ErrConfigMismatch is returned by Open and Restore when the state was made
// under another replicated configuration than the one given.
var ErrConfigMismatch = errors.New("fsm: replicated configuration differs from the state's")

// Validate checks a Config after its defaults are set. Negative values are
// refused rather than read as "use the default".
func (c *Config) Validate() error {
	var bad []string
	if c.Model == nil {
		bad = append(bad, "Model is not set")
	}
	if c.Recover == nil {
		bad = append(bad, "Recover is not set")
	}
	if c.MaxReasons < 0 {
		bad = append(bad, fmt.Sprintf("MaxReasons must not be negative, got %d", c.MaxReasons))
	}
	if c.ReportLifetime < 0 {
		bad = append(bad, fmt.Sprintf("ReportLifetime must not be negative, got %s", c.ReportLifetime))
	}
	if c.Domain.Name == "" || c.Domain.Version == "" {
		bad = append(bad, "Domain needs a name and a version")
	}
	if len(bad) > 0 {
		return fmt.Errorf("fsm: invalid configuration: %s", strings.Join(bad, "; "))
	}
	return nil
}

// replicated is the part of the configuration every replica must share:
// everything Apply's output depends on. One "name value" line per setting,
// in a fixed order. It is stored in the state (keyConfig) when the state is
// created, so it travels with snapshots and is part of StateHash; Open and
// Restore refuse a state made under other values, because a member that
// applies the same log under other values diverges from the cluster.
func (c *Config) replicated() []byte {
	p := reputation.ParamsDigest(c.Model.Params())
	d := c.Domain
	return fmt.Appendf(nil, "model-params %x\ndomain %q %q %d %s\nmax-reasons %d\nretain-epochs %d\nparams-digest %x\nreport-lifetime-ms %d\nreport-clock-skew-ms %d\n",
		p, d.Name, d.Version, d.ChainID, d.VerifyingContract, c.MaxReasons, c.RetainEpochs, c.ParamsDigest,
		c.ReportLifetime.Milliseconds(), c.ReportClockSkew.Milliseconds())
}

// configDiff names the settings that differ between the recorded
// configuration and this one.
func configDiff(recorded, now []byte) string {
	rec := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(recorded)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		rec[k] = v
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(now)), "\n") {
		k, v, _ := strings.Cut(l, " ")
		if r, ok := rec[k]; !ok {
			out = append(out, k+" not recorded")
		} else if r != v {
			out = append(out, fmt.Sprintf("%s %s, now %s", k, r, v))
		}
	}
	if len(out) == 0 {
		return "unreadable record"
	}
	return strings.Join(out, "; ")
}

// checkConfig compares the state's recorded configuration with f's and
// records f's when the state has none (a new state, or one from before
// the record existed).
func (f *FSM) checkConfig() error {
	want := f.cfg.replicated()
	v, closer, err := f.db.Get(keyConfig)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := f.db.Set(keyConfig, want, pebble.Sync); err != nil {
			return fmt.Errorf("fsm: record configuration: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("fsm: read recorded configuration: %w", err)
	}
	defer closer.Close()
	if !bytes.Equal(v, want) {
		return fmt.Errorf("%w (%s): every member must run with the values the state was created with; start with those, or with a new data directory", ErrConfigMismatch, configDiff(v, want))
	}
	return nil
}
