package oracle

import (
	"context"
	"time"
)

// leaderLoop runs the leader-only work while this member leads.
func (m *Member) leaderLoop(ctx context.Context) {
	var cancel context.CancelFunc
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if cancel != nil {
				cancel()
			}
			return
		case <-t.C:
		}
		leading := m.IsLeader()
		switch {
		case leading && cancel == nil:
			var lctx context.Context
			lctx, cancel = context.WithCancel(ctx)
			m.log.Info("leadership gained; starting scheduler and epoch closer")
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.lead(lctx)
			}()
		case !leading && cancel != nil:
			m.log.Info("leadership lost")
			cancel()
			cancel = nil
		}
	}
}

func (m *Member) lead(ctx context.Context) {
	// Apply everything committed by earlier leaders before deciding.
	if err := m.raft.Barrier(10 * time.Second).Error(); err != nil {
		m.log.Warn("leader barrier failed", "err", err)
		return
	}
	s := newScheduler(m)
	s.lastStorm = m.cfg.Now()
	since := m.cfg.Now()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("scheduler", "err", err)
		}
		if err := m.maybeCloseEpoch(ctx, since); err != nil && ctx.Err() == nil {
			m.log.Warn("epoch close", "err", err)
		}
	}
}
