package reputation

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// TestModelInvariants applies random event sequences (fixed seeds) and checks
// properties every state must have.
func TestModelInvariants(t *testing.T) {
	m := testModel(t)
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			var st NodeState
			at := uint64(1_700_000_000_000)
			uuids := []string{"GPU-a", "GPU-b", "GPU-c"}
			for i := range 300 {
				at += rng.Uint64N(4 * 3_600_000)
				var ev Event
				switch rng.IntN(11) {
				case 10:
					r := ReasonIdentityDuplicateLost
					if rng.IntN(2) == 0 {
						r = ReasonIdentityDuplicate
					}
					ev = Event{Kind: EventDuplicateDecided, Identity: uuids[rng.IntN(3)], Reason: r}
				case 0:
					ev = Event{Kind: EventRegistered, Devices: []Device{{UUID: uuids[rng.IntN(3)], Fingerprint: [32]byte{byte(rng.IntN(2))}}}}
				case 1:
					ev = Event{Kind: EventChallengeMissed, Challenge: fmt.Sprint("m", i)}
				case 2:
					ev = Event{Kind: EventVerdictRejected, Challenge: fmt.Sprint("r", i), Reason: ReasonProofInvalid}
				case 3:
					ev = Event{Kind: EventDuplicateIdentity, Identity: uuids[rng.IntN(3)], Nodes: []ethcrypto.Address{{1}, {2}}}
				case 4:
					ev = Event{Kind: EventDuplicateResolved, Identity: uuids[rng.IntN(3)]}
				default:
					ev = Event{Kind: EventVerdictAccepted, Challenge: fmt.Sprint("c", i), ExpectedMs: 1000, ElapsedMs: 500 + rng.Uint64N(1200)}
				}
				ev.At = at
				next, err := m.Apply(st, ev)
				if err != nil {
					t.Fatalf("event %d (%s): %v", i, ev.Kind, err)
				}
				st = next
				v := m.View(st, at)
				if v.Score > MaxBP {
					t.Fatalf("score %d > %d", v.Score, MaxBP)
				}
				if v.Status == StatusRejected && v.Score != 0 {
					t.Fatalf("rejected node has score %d", v.Score)
				}
				for _, c := range st.Conflicts {
					if c.Outcome != ConflictOpen && v.Status != StatusRejected {
						t.Fatalf("node with a decided conflict (%d) is %s", c.Outcome, v.Status)
					}
					if !c.Incumbent && v.Status == StatusTrusted {
						t.Fatalf("newcomer to a contested identity is trusted")
					}
				}
				if v.Status == StatusTrusted && (v.Score < m.p.TrustedScoreBP || len(v.Findings) != 0) {
					t.Fatalf("trusted with score %d and findings %v", v.Score, v.Findings)
				}
				if v.Status != StatusTrusted && len(v.Findings) == 0 {
					t.Fatalf("status %s without findings", v.Status)
				}
				for d, dv := range v.Dimensions {
					if dv.Score > dv.Rate || dv.Score > dv.Confidence {
						t.Fatalf("%s: score %d above rate %d or confidence %d", Dimension(d), dv.Score, dv.Rate, dv.Confidence)
					}
				}
				// Decay lowers confidence and keeps rates (up to rounding).
				later := m.View(st, at+30*24*3_600_000)
				for d := range later.Dimensions {
					if later.Dimensions[d].Confidence > v.Dimensions[d].Confidence {
						t.Fatalf("%s: confidence rose with time", Dimension(d))
					}
				}
				b, _ := st.MarshalBinary()
				var back NodeState
				if err := back.UnmarshalBinary(b); err != nil {
					t.Fatalf("state does not decode: %v", err)
				}
			}
		})
	}
}
