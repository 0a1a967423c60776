package fsm

import (
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Shadow mode is a cluster setting (MetaState.shadow, changed by
// SetShadowModeCommand) under which the state machine computes and stores
// verdicts, scores, statuses and penalties exactly as when enforcing, but
// publishes every node in epoch reports with the neutral leaf
// (ShadowStatus, ShadowScoreBP). A network can so run the oracle beside its
// own checks: its consumers see a feed that treats every registered node
// alike, while the API shows the verdicts and each report keeps the root
// and the status counts enforcement would have published.

const (
	// ShadowStatus is the status every leaf carries in shadow mode: the
	// status of a new node, which reward contracts already accept
	// (RewardPool pays probation and trusted nodes).
	ShadowStatus = reputation.StatusProbation
	// ShadowScoreBP is the score every leaf carries in shadow mode: the
	// same for every node, so consumers that weigh by score (RewardPool
	// pays pro rata) treat every node alike, and nonzero, so none is
	// refused for its score.
	ShadowScoreBP uint32 = 10000
)

// Published returns the (score, status) an epoch report publishes for a
// node whose computed status and score are status and score: themselves
// when enforcing (a rejected node's score is 0), the neutral leaf in shadow
// mode.
func Published(status reputation.Status, score uint32, shadow bool) (uint32, reputation.Status) {
	switch {
	case shadow:
		return ShadowScoreBP, ShadowStatus
	case status == reputation.StatusRejected:
		return 0, status
	}
	return score, status
}

// setShadowMode switches the mode; the epoch closes that follow use it.
// Setting the mode the cluster is already in changes nothing.
func (t *txn) setShadowMode(c *truegpuv1.SetShadowModeCommand) error {
	meta, err := t.meta()
	if err != nil {
		return err
	}
	if meta.Shadow == c.Shadow {
		return nil
	}
	meta.Shadow = c.Shadow
	meta.ShadowChangedIndex = t.index
	meta.ShadowChangedAtUnixMs = t.at
	t.putMsg(keyMeta, meta)
	return nil
}
