package client_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/client"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// TestVerifyReportWindow: with Trust.At the report must be valid at that
// time; its window is signed, so moving it breaks the signatures; an empty
// window is refused without Trust.At too.
func TestVerifyReportWindow(t *testing.T) {
	c := dial(t, server)
	r, err := c.LatestReport(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if r.ValidFrom >= r.Timestamp || r.ExpiresAt <= r.Timestamp {
		t.Fatalf("report at %d valid from %d until %d", r.Timestamp, r.ValidFrom, r.ExpiresAt)
	}
	at := func(sec uint64) client.Trust {
		return client.Trust{Signers: trustedSigners, At: time.Unix(int64(sec), 0)}
	}
	for _, sec := range []uint64{r.ValidFrom, r.Timestamp, r.ExpiresAt} {
		if err := client.VerifyReport(r, at(sec)); err != nil {
			t.Errorf("at %d: %v", sec, err)
		}
	}
	for sec, want := range map[uint64]error{r.ValidFrom - 1: reputation.ErrNotYetValid, r.ExpiresAt + 1: reputation.ErrExpired} {
		if err := client.VerifyReport(r, at(sec)); !errors.Is(err, client.ErrReportInvalid) || !errors.Is(err, want) {
			t.Errorf("at %d: %v, want %v", sec, err, want)
		}
	}
	stretched := proto.Clone(r).(*truegpuv1.EpochReport)
	stretched.ExpiresAt += 3600
	stretched.Digest = nil
	if err := client.VerifyReport(stretched, at(r.ExpiresAt+1)); !errors.Is(err, reputation.ErrNotMember) {
		t.Errorf("report with a stretched window: %v", err)
	}
	empty := proto.Clone(r).(*truegpuv1.EpochReport)
	empty.ValidFrom = empty.ExpiresAt + 1
	if err := client.VerifyReport(empty, client.Trust{Signers: trustedSigners}); !errors.Is(err, reputation.ErrInvalidWindow) {
		t.Errorf("report with an empty window: %v", err)
	}
}
