package fsm

import (
	"bytes"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Epochs: the close (contests decided, the report built, retention), and
// the members' report signatures.

// Threshold is the number of report signatures needed from n signers: a
// majority.
func Threshold(n int) int { return n/2 + 1 }

func (t *txn) closeEpoch(c *truegpuv1.CloseEpochCommand) error {
	meta, err := t.meta()
	if err != nil {
		return err
	}
	if c.Epoch != meta.CurrentEpoch {
		return fmt.Errorf("%w: close of epoch %d, open epoch is %d", ErrStaleEpoch, c.Epoch, meta.CurrentEpoch)
	}
	signers, err := t.signers()
	if err != nil {
		return err
	}
	var cfgDigest [32]byte
	threshold := 0
	if len(signers) > 0 {
		threshold = Threshold(len(signers))
		cfgDigest = reputation.ConfigDigest(signers, threshold, t.f.cfg.ParamsDigest)
	}
	if err := t.decideContests(); err != nil {
		return err
	}
	at := uint64(max(t.at, 0))
	var entries []reputation.Entry
	err = t.scan(prefixNode, func(k, v []byte) error {
		if w, ok := t.overlay[string(k)]; ok && w != nil {
			v = w // decided by decideContests in this command
		}
		var rec truegpuv1.NodeRecord
		if err := proto.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("fsm: corrupt node record: %w", err)
		}
		var st reputation.NodeState
		if err := st.UnmarshalBinary(rec.Reputation); err != nil {
			return fmt.Errorf("fsm: node %s: %w", addrString(rec.Address), err)
		}
		view := t.f.cfg.Model.View(st, at)
		score, status := Published(view.Status, view.Score, false)
		entries = append(entries, reputation.Entry{Address: ethcrypto.Address(rec.Address), Score: score, Status: status})
		return nil
	})
	if err != nil {
		return err
	}
	// entries are what enforcement publishes. In shadow mode the report
	// keeps their root and counts and publishes the neutral leaves.
	report, _, err := reputation.CloseEpoch(cfgDigest, c.Epoch, t.index, at/1000, entries)
	if err != nil {
		return fmt.Errorf("%w: close epoch %d: %w", ErrInvalidCommand, c.Epoch, err)
	}
	byStatus := map[string]uint32{}
	for _, e := range entries {
		byStatus[e.Status.String()]++
	}
	var enforcedRoot []byte
	if meta.Shadow {
		root := report.Root
		enforcedRoot = root[:]
		for i := range entries {
			entries[i].Score, entries[i].Status = Published(entries[i].Status, entries[i].Score, true)
		}
		if report, _, err = reputation.CloseEpoch(cfgDigest, c.Epoch, t.index, at/1000, entries); err != nil {
			return fmt.Errorf("%w: close epoch %d: %w", ErrInvalidCommand, c.Epoch, err)
		}
	}
	// The validity window follows from the leader's time of the command
	// and the configuration, so every replica signs the same digest.
	report.ValidFrom, report.ExpiresAt = reputation.ReportWindow(report.Timestamp, t.f.cfg.ReportClockSkew, t.f.cfg.ReportLifetime)
	digest := reputation.ReportDigest(t.f.cfg.Domain, report)
	dom := t.f.cfg.Domain
	es := &truegpuv1.EpochState{Report: &truegpuv1.EpochReport{
		Epoch: report.Epoch, Round: report.Round, Timestamp: report.Timestamp,
		ConfigDigest: report.ConfigDigest[:], Root: report.Root[:], Count: report.Count, Digest: digest[:],
		ValidFrom: report.ValidFrom, ExpiresAt: report.ExpiresAt,
		Domain:    &truegpuv1.Eip712Domain{Name: dom.Name, Version: dom.Version, ChainId: dom.ChainID, VerifyingContract: dom.VerifyingContract.String()},
		Threshold: uint32(threshold),
		Shadow:    meta.Shadow, EnforcedRoot: enforcedRoot, EnforcedByStatus: byStatus,
	}}
	for _, s := range signers {
		es.Report.Signers = append(es.Report.Signers, s.String())
	}
	for _, e := range entries {
		es.Leaves = append(es.Leaves, &truegpuv1.EpochLeaf{Address: e.Address[:], ScoreBp: e.Score, Status: truegpuv1.NodeStatus(e.Status)})
	}
	vp := key(prefixEpochVerd, be64(c.Epoch))
	err = t.scan(vp, func(k, v []byte) error {
		es.VerdictChallengeIds = append(es.VerdictChallengeIds, slices.Clone(v))
		t.del(slices.Clone(k))
		return nil
	})
	if err != nil {
		return err
	}
	t.putMsg(key(prefixEpoch, be64(c.Epoch)), es)
	if c.Epoch > t.f.cfg.RetainEpochs {
		if err := t.pruneEpoch(c.Epoch - t.f.cfg.RetainEpochs); err != nil {
			return err
		}
	}
	meta.CurrentEpoch++
	meta.EpochOpenedAtUnixMs = t.at
	t.putMsg(keyMeta, meta)
	t.pending.EpochClosed = c.Epoch
	return nil
}

// decideContests decides every undecided identity contest on the evidence
// its holders' challenges gathered (reputation.DecideConflict): losers and
// clone pairs get EventDuplicateDecided, a winner EventDuplicateResolved.
// A contest with nothing left undecided leaves the index. Its cost grows
// with the number of contested identities, not with the fleet.
func (t *txn) decideContests() error {
	var ids []string
	if err := t.scan(prefixContest, func(k, _ []byte) error {
		ids = append(ids, string(k[len(prefixContest):]))
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		holders, err := t.identityHolders(id)
		if err != nil {
			return err
		}
		recs := make([]*truegpuv1.NodeRecord, len(holders))
		states := make([]reputation.NodeState, len(holders))
		for i, a := range holders {
			if recs[i], err = t.node(a[:]); err != nil {
				return err
			}
			if err := states[i].UnmarshalBinary(recs[i].Reputation); err != nil {
				return fmt.Errorf("fsm: node %s: %w", a, err)
			}
		}
		open := 0
		for i, dec := range reputation.DecideConflict(id, states) {
			var ev reputation.Event
			switch dec {
			case reputation.Wins:
				ev = reputation.Event{Kind: reputation.EventDuplicateResolved, Identity: id}
			case reputation.Loses:
				ev = reputation.Event{Kind: reputation.EventDuplicateDecided, Identity: id, Reason: reputation.ReasonIdentityDuplicateLost}
			case reputation.Clone:
				ev = reputation.Event{Kind: reputation.EventDuplicateDecided, Identity: id, Reason: reputation.ReasonIdentityDuplicate}
			default:
				if contestOpen(states[i], id) {
					open++
				}
				continue
			}
			if err := t.event(recs[i], ev); err != nil {
				return err
			}
			t.putMsg(key(prefixNode, holders[i][:]), recs[i])
		}
		if open == 0 {
			t.del(key(prefixContest, []byte(id)))
		}
	}
	return nil
}

func contestOpen(st reputation.NodeState, id string) bool {
	for _, c := range st.Conflicts {
		if c.Identity == id && c.Outcome == reputation.ConflictOpen {
			return true
		}
	}
	return false
}

// pruneEpoch deletes the challenges decided in closed epoch e and their
// history rows. The epoch's report and its list of challenge ids stay;
// a member that has not audited the epoch by now no longer can, and does
// not sign it.
func (t *txn) pruneEpoch(e uint64) error {
	es := &truegpuv1.EpochState{}
	ok, err := t.getMsg(key(prefixEpoch, be64(e)), es)
	if err != nil || !ok {
		return err
	}
	for _, id := range es.VerdictChallengeIds {
		cs := &truegpuv1.ChallengeState{}
		found, err := t.getMsg(key(prefixChallenge, id), cs)
		if err != nil {
			return err
		}
		if !found || cs.Epoch != e {
			continue
		}
		ch := cs.Challenge
		t.del(key(prefixChallenge, id))
		t.del(key(prefixHistory, ch.Address, be64(uint64(max(ch.IssuedAtUnixMs, 0))), id))
		t.del(key(prefixNonce, ch.Nonce))
	}
	return nil
}

func (t *txn) addReportSignature(c *truegpuv1.AddReportSignatureCommand) error {
	sig := c.Signature
	if sig == nil || len(sig.Signature) != ethcrypto.SignatureLen {
		return invalid("report signature: want %d signature bytes", ethcrypto.SignatureLen)
	}
	es := &truegpuv1.EpochState{}
	ok, err := t.getMsg(key(prefixEpoch, be64(c.Epoch)), es)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: epoch %d has no report", ErrNotFound, c.Epoch)
	}
	signer, err := ethcrypto.ParseAddress(sig.SignerAddress)
	if err != nil {
		return invalid("report signature: signer: %v", err)
	}
	if !slices.Contains(es.Report.Signers, signer.String()) {
		return fmt.Errorf("%w: %s is not a signer of epoch %d", ErrBadSignature, signer, c.Epoch)
	}
	got, err := ethcrypto.RecoverAddress([32]byte(es.Report.Digest), sig.Signature)
	if err != nil || got != signer {
		return fmt.Errorf("%w: signature for epoch %d does not recover to %s", ErrBadSignature, c.Epoch, signer)
	}
	for _, s := range es.Report.Signatures {
		if s.SignerAddress == signer.String() {
			return fmt.Errorf("%w: %s already signed epoch %d", ErrConflict, signer, c.Epoch)
		}
	}
	es.Report.Signatures = append(es.Report.Signatures, &truegpuv1.MemberSignature{
		MemberId: sig.MemberId, SignerAddress: signer.String(), Signature: sig.Signature,
	})
	slices.SortFunc(es.Report.Signatures, func(a, b *truegpuv1.MemberSignature) int {
		x, _ := ethcrypto.ParseAddress(a.SignerAddress)
		y, _ := ethcrypto.ParseAddress(b.SignerAddress)
		return bytes.Compare(x[:], y[:])
	})
	if !es.Report.Complete && es.Report.Threshold > 0 && len(es.Report.Signatures) >= int(es.Report.Threshold) {
		es.Report.Complete = true
		meta, err := t.meta()
		if err != nil {
			return err
		}
		if c.Epoch > meta.LastCompleteEpoch {
			meta.LastCompleteEpoch = c.Epoch
			t.putMsg(keyMeta, meta)
		}
	}
	t.putMsg(key(prefixEpoch, be64(c.Epoch)), es)
	return nil
}
