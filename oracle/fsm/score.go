package fsm

import (
	"fmt"
	"strings"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Reputation events on node records: event runs the model and keeps the
// record's derived view (status, score, dimensions, reasons) current.

// event applies a reputation event to rec and refreshes its view.
func (t *txn) event(rec *truegpuv1.NodeRecord, ev reputation.Event) error {
	var st reputation.NodeState
	if len(rec.Reputation) > 0 {
		if err := st.UnmarshalBinary(rec.Reputation); err != nil {
			return fmt.Errorf("fsm: node %s: %w", addrString(rec.Address), err)
		}
	}
	ev.At = uint64(max(t.at, 0))
	next, err := t.f.cfg.Model.Apply(st, ev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	enc, err := next.MarshalBinary()
	if err != nil {
		return fmt.Errorf("fsm: encode reputation: %w", err)
	}
	oldStatus, oldScore := rec.Status, rec.ScoreBp
	rec.Reputation = enc
	t.f.fillView(rec, next, ev.At)
	rec.UpdatedAtUnixMs = t.at
	if rec.Status != oldStatus || rec.ScoreBp != oldScore {
		reason := ""
		if ev.Reason != "" {
			reason = string(ev.Reason)
		}
		t.pending.ScoreChanges = append(t.pending.ScoreChanges, &truegpuv1.ScoreChange{
			Address: addrString(rec.Address), OldScoreBp: oldScore, NewScoreBp: rec.ScoreBp,
			OldStatus: oldStatus, NewStatus: rec.Status, Reason: reason, AtUnixMs: t.at, AppliedIndex: t.index,
		})
	}
	return nil
}

// fillView sets the derived fields of rec from the model's view at time at.
func (f *FSM) fillView(rec *truegpuv1.NodeRecord, st reputation.NodeState, at uint64) {
	v := f.cfg.Model.View(st, at)
	rec.Status = truegpuv1.NodeStatus(v.Status)
	rec.ScoreBp = v.Score
	ds := func(d reputation.Dimension) *truegpuv1.DimensionScore {
		return &truegpuv1.DimensionScore{ScoreBp: v.Dimensions[d].Score, ConfidenceBp: v.Dimensions[d].Confidence}
	}
	rec.Dimensions = &truegpuv1.Dimensions{
		Identity: ds(reputation.Identity), Capacity: ds(reputation.Capacity),
		Liveness: ds(reputation.Liveness), Correctness: ds(reputation.Correctness),
	}
	self := ethcrypto.Address(rec.Address).String()
	var reasons []*truegpuv1.Reason
	for _, fd := range v.Findings {
		reasons = append(reasons, &truegpuv1.Reason{Code: string(fd.Reason), Detail: reasonDetail(fd.Dimension.String(), fd.Evidence), Evidence: evidence(fd.Evidence, self, 0, 0)})
	}
	for i := len(st.Penalties) - 1; i >= 0 && len(reasons) < f.cfg.MaxReasons; i-- {
		p := st.Penalties[i]
		reasons = append(reasons, &truegpuv1.Reason{Code: string(p.Reason), Detail: reasonDetail(p.Dimension.String()+" penalty", p.Evidence), Evidence: evidence(p.Evidence, self, 0, int64(p.At))})
	}
	if len(reasons) > f.cfg.MaxReasons {
		reasons = reasons[:f.cfg.MaxReasons]
	}
	rec.Reasons = reasons
}

// reasonDetail is what a reason says beside its code: the dimension, and
// the identity or timing its evidence names, so that two reasons with one
// code (a node whose UUID and serial are both shared, say) read apart.
//
// The detail is worded here, inside Apply, and stored in the node record,
// so its wording is replicated state: changing it changes the state (and
// StateHash) of every node re-scored afterwards, and members that word it
// differently diverge. A change of wording is a change of the state format
// (docs/ORACLE.md, Determinism).
func reasonDetail(base string, refs []string) string {
	var extra []string
	for _, r := range refs {
		switch kind, v, _ := reputation.SplitRef(r); kind {
		case reputation.RefIdentity:
			extra = append(extra, "shared "+v)
		case reputation.RefTiming:
			extra = append(extra, "latency "+v+" (measured/expected)")
		}
	}
	if len(extra) == 0 {
		return base
	}
	return base + ": " + strings.Join(extra, ", ")
}

// evidence turns the model's evidence references into API evidence. self,
// the node the reason belongs to, is left out of the related addresses.
func evidence(refs []string, self string, index uint64, at int64) []*truegpuv1.Evidence {
	var out []*truegpuv1.Evidence
	var related []string
	for _, r := range refs {
		switch kind, v, _ := reputation.SplitRef(r); kind {
		case reputation.RefChallenge:
			out = append(out, &truegpuv1.Evidence{ChallengeId: v, AppliedIndex: index, AtUnixMs: at})
		case reputation.RefNode:
			if !strings.EqualFold(v, self) {
				related = append(related, v)
			}
		}
	}
	if len(related) > 0 {
		out = append(out, &truegpuv1.Evidence{RelatedAddresses: related, AppliedIndex: index, AtUnixMs: at})
	}
	return out
}
