package oracle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// leadershipBuffer is the capacity of the channel Raft reports leadership
// changes on (raft.Config.NotifyCh). Raft blocks on a full channel; the
// leader loop takes each change at once, so the buffer only has to hold the
// few changes around a member's start and close, when the loop is not
// running.
const leadershipBuffer = 16

// leaderLoop runs the leader-only work (lead: the scheduler and the epoch
// closer) from each leadership gain that Raft reports on the member's
// NotifyCh to the loss that follows it.
func (m *Member) leaderLoop(ctx context.Context) {
	followLeadership(ctx, m.leadership, &m.wg, m.log, m.lead)
}

// followLeadership runs work while changes says this member leads. Raft
// sends every change on NotifyCh, in order: true when the member becomes
// the leader, false when it steps down. On true, work starts in its own
// goroutine (counted in wg); on false its context is cancelled at once. A
// true while work runs is a new term, after a loss that was not reported:
// the work is restarted, so that it begins again with the new term's
// Barrier. A new run of work begins only after the previous one has
// returned, so two never overlap (an old term's last tick with the new
// term's first). When ctx ends, the work's context is cancelled and
// followLeadership returns.
func followLeadership(ctx context.Context, changes <-chan bool, wg *sync.WaitGroup, log *slog.Logger, work func(context.Context)) {
	var cancel context.CancelFunc
	var prevDone chan struct{} // closed when the last run of work returned
	stop := func() {
		if cancel != nil {
			cancel()
			cancel = nil
		}
	}
	defer stop()
	for {
		var leading bool
		select {
		case <-ctx.Done():
			return
		case leading = <-changes:
		}
		switch {
		case leading:
			if cancel != nil {
				log.Info("leadership gained again; restarting scheduler and epoch closer")
				stop()
			} else {
				log.Info("leadership gained; starting scheduler and epoch closer")
			}
			lctx, c := context.WithCancel(ctx)
			cancel = c
			prev, done := prevDone, make(chan struct{})
			prevDone = done
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(done)
				if prev != nil {
					select {
					case <-prev:
					case <-lctx.Done():
						return
					}
				}
				work(lctx)
			}()
		case cancel != nil:
			log.Info("leadership lost")
			stop()
		}
	}
}

func (m *Member) lead(ctx context.Context) {
	// Apply everything committed by earlier leaders before deciding. A
	// barrier that fails (slow disks, a term about to end) is retried for
	// as long as this member leads: giving up would leave a leader that
	// never schedules.
	for {
		err := m.raft.Barrier(m.cfg.Timing.RaftTimeout).Error()
		if err == nil {
			break
		}
		m.log.Warn("leader barrier failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.cfg.Timing.AuditInterval):
		}
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
