package fsm

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

func shadowCmd(now int64, on bool) *truegpuv1.Command {
	return &truegpuv1.Command{Version: CommandVersion, LeaderTimeUnixMs: now,
		Body: &truegpuv1.Command_SetShadowMode{SetShadowMode: &truegpuv1.SetShadowModeCommand{Shadow: on}}}
}

// shadowStream is a generated command stream (registrations with shared
// identities, challenges, verdicts, expiries, member rows, epoch closes)
// after a first entry that sets the mode.
func shadowStream(t *testing.T, seed uint64, shadow bool, n int) []*raft.Log {
	t.Helper()
	g := newGen(seed)
	logs := []*raft.Log{entry(t, 1, shadowCmd(g.now, shadow))}
	for range n {
		logs = append(logs, entry(t, uint64(len(logs)+1), g.next()))
	}
	return logs
}

func nodeRecords(t *testing.T, f *FSM) map[string]*truegpuv1.NodeRecord {
	t.Helper()
	out := map[string]*truegpuv1.NodeRecord{}
	if err := f.Nodes(func(r *truegpuv1.NodeRecord) bool {
		out[string(r.Address)] = r
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func entriesOf(leaves []*truegpuv1.EpochLeaf) []reputation.Entry {
	var out []reputation.Entry
	for _, l := range leaves {
		out = append(out, reputation.Entry{Address: ethcrypto.Address(l.Address), Score: l.ScoreBp, Status: reputation.Status(l.Status)})
	}
	return out
}

func treeRoot(t *testing.T, leaves []*truegpuv1.EpochLeaf) [32]byte {
	t.Helper()
	tree, err := reputation.BuildTree(entriesOf(leaves))
	if err != nil {
		t.Fatal(err)
	}
	return tree.Root()
}

// TestShadowModeChangesOnlyPublishedLeaves applies the same command stream
// to an enforcing and a shadow replica: node records, scores, penalties and
// the epochs' verdict lists are identical; every report's leaves differ
// exactly in score and status (the neutral leaf in shadow mode), and the
// shadow report keeps the enforcing report's root and status counts as what
// enforcement would have published. Shadow replicas with other batch
// boundaries and a snapshot restore reach the same state hash.
func TestShadowModeChangesOnlyPublishedLeaves(t *testing.T) {
	for _, seed := range []uint64{4, 5} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			enforcing, shadow := openFSM(t), openFSM(t)
			enforcing.ApplyBatch(shadowStream(t, seed, false, 500))
			logs := shadowStream(t, seed, true, 500)
			shadow.ApplyBatch(logs)

			en, sh := nodeRecords(t, enforcing), nodeRecords(t, shadow)
			if len(en) == 0 || len(en) != len(sh) {
				t.Fatalf("%d enforcing and %d shadow node records", len(en), len(sh))
			}
			for a, r := range en {
				if !proto.Equal(r, sh[a]) {
					t.Fatalf("node %s: record differs between modes:\nenforcing %v\nshadow    %v", ethcrypto.Address([]byte(a)), r, sh[a])
				}
			}
			me, _ := enforcing.Meta()
			ms, _ := shadow.Meta()
			if me.Shadow || !ms.Shadow || ms.ShadowChangedIndex != 1 || me.ShadowChangedIndex != 0 {
				t.Fatalf("meta: enforcing %v, shadow %v", me, ms)
			}
			if me.CurrentEpoch < 4 || me.CurrentEpoch != ms.CurrentEpoch || me.TotalVerdicts != ms.TotalVerdicts {
				t.Fatalf("stream too thin or diverged: enforcing %v, shadow %v", me, ms)
			}

			rejected := 0
			for e := uint64(1); e < me.CurrentEpoch; e++ {
				ee, err := enforcing.Epoch(e)
				if err != nil {
					t.Fatal(err)
				}
				se, err := shadow.Epoch(e)
				if err != nil {
					t.Fatal(err)
				}
				er, sr := ee.Report, se.Report
				if er.Shadow || len(er.EnforcedRoot) != 0 || !sr.Shadow {
					t.Fatalf("epoch %d: enforcing report shadow=%v enforced root %x; shadow report shadow=%v", e, er.Shadow, er.EnforcedRoot, sr.Shadow)
				}
				if len(ee.Leaves) != len(se.Leaves) || er.Count != sr.Count || len(ee.VerdictChallengeIds) != len(se.VerdictChallengeIds) {
					t.Fatalf("epoch %d: %d/%d leaves, %d/%d verdicts", e, len(ee.Leaves), len(se.Leaves), len(ee.VerdictChallengeIds), len(se.VerdictChallengeIds))
				}
				counts := map[string]uint32{}
				neutral := true
				for i, l := range ee.Leaves {
					s := se.Leaves[i]
					if !bytes.Equal(l.Address, s.Address) {
						t.Fatalf("epoch %d leaf %d: address %x in enforcing, %x in shadow", e, i, l.Address, s.Address)
					}
					if s.Status != truegpuv1.NodeStatus(ShadowStatus) || s.ScoreBp != ShadowScoreBP {
						t.Fatalf("epoch %d: shadow leaf of %x publishes %s %d", e, s.Address, s.Status, s.ScoreBp)
					}
					if l.Status == truegpuv1.NodeStatus_NODE_STATUS_REJECTED {
						rejected++
						if l.ScoreBp != 0 {
							t.Fatalf("epoch %d: rejected %x published with score %d", e, l.Address, l.ScoreBp)
						}
					}
					neutral = neutral && l.Status == s.Status && l.ScoreBp == s.ScoreBp
					counts[reputation.Status(l.Status).String()]++
				}
				if neutral && len(ee.Leaves) > 0 {
					t.Fatalf("epoch %d: every enforcing leaf is neutral; the stream shows nothing", e)
				}
				if !bytes.Equal(sr.EnforcedRoot, er.Root) {
					t.Fatalf("epoch %d: shadow report's enforced root %x, enforcing root %x", e, sr.EnforcedRoot, er.Root)
				}
				if !maps.Equal(sr.EnforcedByStatus, counts) || !maps.Equal(er.EnforcedByStatus, counts) {
					t.Fatalf("epoch %d: enforced counts %v (shadow), %v (enforcing), leaves %v", e, sr.EnforcedByStatus, er.EnforcedByStatus, counts)
				}
				if root := treeRoot(t, se.Leaves); !bytes.Equal(root[:], sr.Root) || bytes.Equal(sr.Root, er.Root) {
					t.Fatalf("epoch %d: shadow root %x, its leaves' %x, enforcing %x", e, sr.Root, root, er.Root)
				}
				// Everything signed but the root is the same.
				if er.Epoch != sr.Epoch || er.Round != sr.Round || er.Timestamp != sr.Timestamp || !bytes.Equal(er.ConfigDigest, sr.ConfigDigest) ||
					er.ValidFrom != sr.ValidFrom || er.ExpiresAt != sr.ExpiresAt {
					t.Fatalf("epoch %d: reports differ beyond the root:\n%v\n%v", e, er, sr)
				}
			}
			if rejected == 0 {
				t.Fatal("no enforcing report published a rejected node")
			}

			// Replicas of the shadow stream agree.
			rng := rand.New(rand.NewPCG(seed, 9))
			replica, restored := openFSM(t), false
			for i := 0; i < len(logs); {
				end := min(i+1+rng.IntN(40), len(logs))
				replica.ApplyBatch(logs[i:end])
				i = end
				if !restored && i > len(logs)/2 {
					// Carry on from a snapshot of this replica.
					fresh := openFSM(t)
					if err := fresh.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, replica)))); err != nil {
						t.Fatal(err)
					}
					replica, restored = fresh, true
				}
			}
			if mustHash(t, replica) != mustHash(t, shadow) {
				t.Fatal("shadow replicas disagree")
			}
		})
	}
}

// TestShadowModeToggle switches the mode mid-epoch: the report closed next
// is in the new mode, the ones before keep theirs, setting the current mode
// again changes nothing, and the meta records when the mode last changed.
func TestShadowModeToggle(t *testing.T) {
	f := openFSM(t)
	g := newGen(6)
	want := map[uint64]bool{} // epoch -> closed in shadow mode
	shadow := false
	var changedAt uint64
	set := func(on bool) {
		t.Helper()
		if err := apply1(t, f, shadowCmd(g.now, on)); err != nil {
			t.Fatal(err)
		}
		if on != shadow {
			changedAt = f.AppliedIndex()
		}
		shadow = on
		meta, err := f.Meta()
		if err != nil {
			t.Fatal(err)
		}
		if meta.Shadow != on || meta.ShadowChangedIndex != changedAt {
			t.Fatalf("after setting shadow=%v: meta %v, want changed at %d", on, meta, changedAt)
		}
	}
	// Toggles fire a few commands into an epoch: after the 2nd close on,
	// then the same again, after the 4th off, the 5th on, the 6th off.
	toggles := map[int][]bool{2: {true, true}, 4: {false}, 5: {true}, 6: {false, false}}
	closes, after := 0, -1
	for f.AppliedIndex() < 3000 && closes < 8 {
		c := g.next()
		ce := c.GetCloseEpoch()
		if ce != nil {
			want[ce.Epoch] = shadow
		}
		err := apply1(t, f, c)
		if ce != nil {
			if err != nil {
				t.Fatal(err)
			}
			closes, after = closes+1, 3
		}
		if after--; after == 0 {
			for _, on := range toggles[closes] {
				set(on)
			}
		}
	}
	if closes < 8 {
		t.Fatalf("only %d epochs closed", closes)
	}
	for e, sh := range want {
		es, err := f.Epoch(e)
		if err != nil {
			t.Fatal(err)
		}
		if es.Report.Shadow != sh {
			t.Fatalf("epoch %d closed with shadow=%v, want %v", e, es.Report.Shadow, sh)
		}
		for _, l := range es.Leaves {
			if sh && (reputation.Status(l.Status) != ShadowStatus || l.ScoreBp != ShadowScoreBP) {
				t.Fatalf("epoch %d (shadow) publishes %x as %s %d", e, l.Address, l.Status, l.ScoreBp)
			}
		}
		if sh != (len(es.Report.EnforcedRoot) == 32) {
			t.Fatalf("epoch %d (shadow=%v) has enforced root %x", e, sh, es.Report.EnforcedRoot)
		}
	}
	if !want[3] || !want[4] || want[5] || !want[6] || want[7] || want[2] {
		t.Fatalf("epochs' modes %v", want)
	}
}

// TestPublished: the leaf a report publishes for a computed status and
// score in each mode.
func TestPublished(t *testing.T) {
	for _, c := range []struct {
		status     reputation.Status
		score      uint32
		shadow     bool
		wantScore  uint32
		wantStatus reputation.Status
	}{
		{reputation.StatusTrusted, 8123, false, 8123, reputation.StatusTrusted},
		{reputation.StatusRejected, 0, false, 0, reputation.StatusRejected},
		{reputation.StatusRejected, 4000, false, 0, reputation.StatusRejected},
		{reputation.StatusSuspect, 5000, false, 5000, reputation.StatusSuspect},
		{reputation.StatusRejected, 0, true, 10000, reputation.StatusProbation},
		{reputation.StatusTrusted, 9000, true, 10000, reputation.StatusProbation},
	} {
		score, status := Published(c.status, c.score, c.shadow)
		if score != c.wantScore || status != c.wantStatus {
			t.Errorf("Published(%s, %d, shadow=%v) = %d %s, want %d %s", c.status, c.score, c.shadow, score, status, c.wantScore, c.wantStatus)
		}
	}
}
