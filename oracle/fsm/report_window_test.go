package fsm

import (
	"testing"
	"time"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// TestReportWindowFromConfig: a closed epoch's report is valid from its
// timestamp minus Config.ReportClockSkew until its timestamp plus
// Config.ReportLifetime (defaults when unset), all from the command's
// leader time, and the signed digest covers the window.
func TestReportWindowFromConfig(t *testing.T) {
	const now = int64(1_700_000_123_456) // leader time, ms
	const ts = uint64(1_700_000_123)
	for _, c := range []struct {
		name        string
		cfg         Config
		from, until uint64
	}{
		{"defaults", Config{}, ts - uint64(reputation.DefaultReportClockSkew/time.Second), ts + uint64(reputation.DefaultReportLifetime/time.Second)},
		{"configured", Config{ReportClockSkew: 30 * time.Second, ReportLifetime: 10 * time.Minute}, ts - 30, ts + 600},
		{"no skew", Config{ReportClockSkew: -1, ReportLifetime: time.Minute}, ts, ts + 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Open(t.TempDir(), c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := apply1(t, f, commandAt(now, &truegpuv1.CloseEpochCommand{Epoch: 1})); err != nil {
				t.Fatal(err)
			}
			es, err := f.Epoch(1)
			if err != nil {
				t.Fatal(err)
			}
			r := es.Report
			if r.Timestamp != ts || r.ValidFrom != c.from || r.ExpiresAt != c.until {
				t.Fatalf("report at %d valid from %d until %d; want %d, %d, %d", r.Timestamp, r.ValidFrom, r.ExpiresAt, ts, c.from, c.until)
			}
			rep := reputation.Report{ConfigDigest: [32]byte(r.ConfigDigest), Epoch: r.Epoch, Round: r.Round, Timestamp: r.Timestamp,
				Root: [32]byte(r.Root), Count: r.Count, ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt}
			if d := reputation.ReportDigest(f.Domain(), rep); [32]byte(r.Digest) != d {
				t.Fatal("the report's digest is not the EIP-712 digest of its fields and window")
			}
			rep.ExpiresAt++
			if d := reputation.ReportDigest(f.Domain(), rep); [32]byte(r.Digest) == d {
				t.Fatal("the report's digest does not cover its expires-at")
			}
		})
	}
}
