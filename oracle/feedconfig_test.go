package oracle

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/testwait"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
)

// TestFeedConfiguration: a member's reports carry the configured EIP-712
// domain, and their config digest binds the member signers, the threshold,
// the profile and the reputation parameters.
func TestFeedConfiguration(t *testing.T) {
	contract := ethcrypto.MustParseAddress("0x00000000000000000000000000000000000f33d1")
	c := newCluster(t, 1, func(cfg *Config) { cfg.FSM.Domain = reputation.NewDomain(31337, contract) })
	l := c.leader(5 * time.Second)
	testwait.Until(t, 10*time.Second, l.selfRegistered, "member row never registered")
	if _, err := l.Propose(context.Background(), &truegpuv1.Command{Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: 1}}}); err != nil {
		t.Fatal(err)
	}
	es, err := l.fsm.Epoch(1)
	if err != nil {
		t.Fatal(err)
	}
	r := es.Report
	if r.Domain.GetChainId() != 31337 || r.Domain.GetVerifyingContract() != contract.String() {
		t.Fatalf("report domain %v, want chain 31337 and contract %s", r.Domain, contract)
	}
	p, _, _ := testKeys(t)
	params := reputation.FeedParamsDigest([][32]byte{p.Digest()}, reputation.DefaultParams())
	want := reputation.ConfigDigest([]ethcrypto.Address{l.Signer()}, 1, params)
	if [32]byte(r.ConfigDigest) != want {
		t.Fatalf("config digest 0x%x, want 0x%x", r.ConfigDigest, want)
	}
	rep := reputation.Report{ConfigDigest: want, Epoch: r.Epoch, Round: r.Round, Timestamp: r.Timestamp, Root: [32]byte(r.Root), Count: r.Count,
		ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt}
	if d := reputation.ReportDigest(reputation.NewDomain(31337, contract), rep); [32]byte(r.Digest) != d {
		t.Fatal("report digest is not the EIP-712 digest under the configured domain")
	}
}

// TestFeedParamsDigestBindsReputation: members with other reputation
// parameters or another profile sign under another config digest.
func TestFeedParamsDigestBindsReputation(t *testing.T) {
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	params := reputation.DefaultParams()
	params.TrustedScoreBP++
	model, err := reputation.NewModel(params)
	if err != nil {
		t.Fatal(err)
	}
	a := Config{Profile: p}
	b := Config{Profile: p, FSM: fsm.Config{Model: model}}
	for _, c := range []*Config{&a, &b} {
		if err := c.ensureDefaults(); err != nil {
			t.Fatal(err)
		}
	}
	if a.FSM.ParamsDigest == b.FSM.ParamsDigest {
		t.Fatal("other reputation parameters, same params digest")
	}
	for _, q := range prover.Profiles() {
		if q.Digest() != p.Digest() && FeedParamsDigest(q, nil) == a.FSM.ParamsDigest {
			t.Fatalf("profile %s has the params digest of %s", q.ID(), p.ID())
		}
	}
}

// TestConfigRefusesNegativeKnobs: a negative knob is an error naming it,
// not a silent default; zero still means the default.
func TestConfigRefusesNegativeKnobs(t *testing.T) {
	c := Config{ID: "m", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0"}
	c.Schedule.Interval = -time.Second
	c.Pipeline.Workers = -2
	c.EpochInterval = -time.Minute
	if err := c.ensureDefaults(); err != nil {
		t.Fatal(err)
	}
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate: %v, want ErrInvalidConfig", err)
	}
	for _, name := range []string{"Schedule.Interval", "Pipeline.Workers", "EpochInterval"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	var z Config
	if err := z.ensureDefaults(); err != nil {
		t.Fatal(err)
	}
	if z.Schedule.Interval != 5*time.Minute || z.Pipeline.Workers != 2 || z.EpochInterval != time.Minute {
		t.Fatalf("zero knobs did not take their defaults: %+v %+v %v", z.Schedule, z.Pipeline, z.EpochInterval)
	}
	if err := z.Schedule.Validate(); err != nil {
		t.Fatal(err)
	}
}
