package oracle

import (
	"context"
	"fmt"
	"time"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func (m *Member) maybeCloseEpoch(ctx context.Context, since time.Time) error {
	meta, err := m.fsm.Meta()
	if err != nil {
		return err
	}
	if meta.Shadow != m.cfg.Shadow {
		// The cluster's mode follows the leader's configuration; the
		// epochs closed from now on are closed in it.
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: m.cfg.Now().UnixMilli(), Body: &truegpuv1.Command_SetShadowMode{
			SetShadowMode: &truegpuv1.SetShadowModeCommand{Shadow: m.cfg.Shadow}}}); err != nil {
			return fmt.Errorf("set shadow mode %v: %w", m.cfg.Shadow, err)
		}
		m.log.Warn("epoch reports' mode switched to this member's", "shadow", m.cfg.Shadow, "open_epoch", meta.CurrentEpoch)
		if meta, err = m.fsm.Meta(); err != nil {
			return err
		}
	}
	opened := time.UnixMilli(meta.EpochOpenedAtUnixMs)
	if opened.Before(since) {
		opened = since
	}
	now := m.cfg.Now()
	if now.Sub(opened) < m.cfg.EpochInterval {
		return nil
	}
	_, err = m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now.UnixMilli(), Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: meta.CurrentEpoch}}})
	return err
}
