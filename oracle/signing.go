package oracle

import (
	"context"
	"slices"
	"time"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// auditLoop runs on every member: for each closed epoch this member has not
// signed, it re-verifies the proofs behind the epoch's verdicts (outside
// Apply) and signs the report only if it agrees.
func (m *Member) auditLoop(ctx context.Context) {
	notes, cancel := m.fsm.Subscribe(16)
	defer cancel()
	t := time.NewTicker(m.cfg.Timing.AuditInterval)
	defer t.Stop()
	refused := map[uint64]bool{}
	passed := map[uint64]bool{} // audited and agreed; only the signature is pending
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-notes:
		}
		meta, err := m.fsm.Meta()
		if err != nil {
			continue
		}
		for e := meta.CurrentEpoch - 1; e >= 1 && e+4 >= meta.CurrentEpoch; e-- {
			if refused[e] {
				continue
			}
			es, err := m.fsm.Epoch(e)
			if err != nil {
				continue
			}
			if !m.shouldSign(es) {
				// Signed already, or not asked to sign: nothing is owed.
				if m.hasSigned(es) || !slices.Contains(es.Report.GetSigners(), m.signer.String()) {
					m.metrics.noteSigned(e)
				}
				continue
			}
			if !passed[e] {
				start := time.Now()
				err := m.audit(es)
				m.metrics.auditSeconds.Observe(time.Since(start).Seconds())
				if err != nil {
					refused[e] = true
					m.metrics.audits.WithLabelValues("refused").Inc()
					m.log.Error("refusing to sign epoch report", "epoch", e, "err", err)
					continue
				}
				m.metrics.audits.WithLabelValues("passed").Inc()
				passed[e] = true
			}
			if err := m.signReport(ctx, es); err != nil {
				if ctx.Err() == nil {
					m.log.Debug("report signature not submitted yet", "epoch", e, "err", err)
				}
			} else {
				m.metrics.signaturesSent.Inc()
				m.metrics.noteSigned(e)
			}
		}
	}
}

func (m *Member) shouldSign(es *truegpuv1.EpochState) bool {
	me := m.signer.String()
	if !slices.Contains(es.Report.GetSigners(), me) {
		return false
	}
	for _, s := range es.Report.Signatures {
		if s.SignerAddress == me {
			return false
		}
	}
	return true
}

// hasSigned reports whether this member's signature is on the report.
func (m *Member) hasSigned(es *truegpuv1.EpochState) bool {
	me := m.signer.String()
	for _, s := range es.Report.GetSignatures() {
		if s.SignerAddress == me {
			return true
		}
	}
	return false
}

func (m *Member) signReport(ctx context.Context, es *truegpuv1.EpochState) error {
	sig, err := m.cfg.SignerKey.SignHash([32]byte(es.Report.Digest))
	if err != nil {
		return err
	}
	ms := &truegpuv1.MemberSignature{MemberId: m.cfg.ID, SignerAddress: m.signer.String(), Signature: sig[:]}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timing.RequestTimeout)
	defer cancel()
	if m.IsLeader() {
		_, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_AddReportSignature{AddReportSignature: &truegpuv1.AddReportSignatureCommand{Epoch: es.Report.Epoch, Signature: ms}}})
		return err
	}
	conn, err := m.leaderConn()
	if err != nil {
		return err
	}
	_, err = truegpuv1.NewMemberServiceClient(conn).SubmitReportSignature(ctx, &truegpuv1.SubmitReportSignatureRequest{Epoch: es.Report.Epoch, Signature: ms})
	return err
}
