package oracle

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Proposer limits.
const (
	// maxBatchCommands bounds the commands coalesced into one log entry.
	maxBatchCommands = 2048
	// maxInflightEntries bounds the log entries proposed but not yet
	// applied; Raft pipelines them to followers. A short pipeline makes
	// entries larger under load, and every entry costs a log append with
	// fdatasync on each member (a thread blocked in fdatasync also holds
	// one of the Go schedulers meanwhile): 8 committed about 15% more
	// commands per second than 64 on two cores. A lone command still goes
	// out at once.
	maxInflightEntries = 8
	// proposeQueue bounds the commands waiting for the proposer.
	proposeQueue = 16384
)

// commandProposer replicates one command and returns the Raft index at
// which it was applied, or the state machine's error for it. The pipeline
// and the scheduler propose through it (Member.Propose on a member).
type commandProposer interface {
	propose(ctx context.Context, c *truegpuv1.Command) (uint64, error)
}

// proposeFunc is a commandProposer of a function.
type proposeFunc func(ctx context.Context, c *truegpuv1.Command) (uint64, error)

func (f proposeFunc) propose(ctx context.Context, c *truegpuv1.Command) (uint64, error) {
	return f(ctx, c)
}

type proposal struct {
	cmd  *truegpuv1.Command
	done chan proposeResult
}

type proposeResult struct {
	index uint64
	err   error
}

type inflight struct {
	future raft.ApplyFuture
	props  []proposal
	start  time.Time
}

// proposer coalesces commands from many goroutines into CommandBatch log
// entries: whatever is queued when Raft can take another entry goes into
// it. Entries are pipelined; a resolver hands each command its own result.
type proposer struct {
	m       *Member
	queue   chan proposal
	pending chan inflight
}

func newProposer(m *Member) *proposer {
	return &proposer{m: m, queue: make(chan proposal, proposeQueue), pending: make(chan inflight, maxInflightEntries)}
}

func (p *proposer) propose(ctx context.Context, c *truegpuv1.Command) (uint64, error) {
	if !p.m.IsLeader() {
		return 0, p.m.notLeaderError()
	}
	pr := proposal{cmd: c, done: make(chan proposeResult, 1)}
	select {
	case p.queue <- pr:
	case <-ctx.Done():
		return 0, ctx.Err()
	default:
		return 0, fmt.Errorf("%w: %d commands waiting to be proposed", ErrOverloaded, len(p.queue))
	}
	select {
	case r := <-pr.done:
		return r.index, r.err
	case <-ctx.Done():
		// The command may still be applied; callers rely on idempotency.
		return 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, ctx.Err())
	}
}

func (p *proposer) run(ctx context.Context) {
	go p.resolve(ctx)
	for {
		var first proposal
		select {
		case <-ctx.Done():
			return
		case first = <-p.queue:
		}
		batch := []proposal{first}
	drain:
		for len(batch) < maxBatchCommands {
			select {
			case pr := <-p.queue:
				batch = append(batch, pr)
			default:
				break drain
			}
		}
		cmds := make([]*truegpuv1.Command, len(batch))
		for i, pr := range batch {
			cmds[i] = pr.cmd
		}
		env := &truegpuv1.Command{Version: fsm.CommandVersion, LeaderTimeUnixMs: p.m.cfg.Now().UnixMilli(),
			Body: &truegpuv1.Command_Batch{Batch: &truegpuv1.CommandBatch{Commands: cmds}}}
		data, err := fsm.Encode(env)
		if err != nil {
			fail(batch, fmt.Errorf("oracle: encode command: %w", err))
			continue
		}
		start := time.Now()
		f := p.m.raft.Apply(data, p.m.cfg.Timing.RaftTimeout)
		p.m.metrics.entryCommands.Observe(float64(len(batch)))
		select {
		case p.pending <- inflight{f, batch, start}:
		case <-ctx.Done():
			fail(batch, ErrClosed)
			return
		}
	}
}

func fail(batch []proposal, err error) {
	for _, pr := range batch {
		pr.done <- proposeResult{err: err}
	}
}

func (p *proposer) resolve(ctx context.Context) {
	for {
		var in inflight
		select {
		case <-ctx.Done():
			// Drain what is left so no caller waits forever.
			for {
				select {
				case in = <-p.pending:
					fail(in.props, ErrClosed)
				default:
					return
				}
			}
		case in = <-p.pending:
		}
		if err := in.future.Error(); err != nil {
			fail(in.props, mapRaftError(err))
			continue
		}
		res, ok := in.future.Response().(*fsm.Result)
		if !ok || len(res.Errs) != len(in.props) {
			fail(in.props, fmt.Errorf("oracle: state machine returned %T for a batch of %d", in.future.Response(), len(in.props)))
			continue
		}
		p.m.metrics.commitSeconds.Observe(time.Since(in.start).Seconds())
		for i, pr := range in.props {
			if res.Errs[i] == nil {
				p.m.metrics.observeCommitted(pr.cmd)
			}
			pr.done <- proposeResult{index: res.Index, err: res.Errs[i]}
		}
	}
}
