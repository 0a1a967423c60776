package oracle

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truegpu/truegpu/internal/testwait"
)

// TestFollowLeadership: leader work starts on a reported gain, is
// cancelled as soon as the loss is reported, starts again on the next
// gain, restarts on a gain reported while it runs, and stops with the
// member. Two runs never overlap, even when a run takes a while to return
// after its cancellation.
func TestFollowLeadership(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan bool)
	started, stopped := make(chan int, 8), make(chan int, 8)
	var mu sync.Mutex
	runs, running, overlaps := 0, 0, 0
	work := func(ctx context.Context) {
		mu.Lock()
		runs++
		run := runs
		running++
		if running > 1 {
			overlaps++
		}
		mu.Unlock()
		started <- run
		<-ctx.Done()
		time.Sleep(30 * time.Millisecond) // an in-flight tick finishing
		mu.Lock()
		running--
		mu.Unlock()
		stopped <- run
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		followLeadership(ctx, changes, &wg, quietLog(), work)
		close(done)
	}()
	expect := func(ch chan int, what string, want int) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("%s run %d, want run %d", what, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("run %d not %s", want, what)
		}
	}
	quiet := func(ch chan int, what string) {
		t.Helper()
		select {
		case got := <-ch:
			t.Fatalf("run %d %s unexpectedly", got, what)
		case <-time.After(50 * time.Millisecond):
		}
	}

	changes <- false // a follower's loss report starts nothing
	quiet(started, "started")
	changes <- true
	expect(started, "started", 1)
	quiet(stopped, "stopped")
	changes <- false
	expect(stopped, "stopped", 1)
	changes <- true
	expect(started, "started", 2)
	changes <- true // a new term while leading: begin again
	expect(stopped, "stopped", 2)
	expect(started, "started", 3)
	cancel()
	expect(stopped, "stopped", 3)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("followLeadership did not return when its context ended")
	}
	wg.Wait()
	quiet(started, "started")
	if overlaps > 0 {
		t.Fatalf("%d runs of the leader work began while an earlier one was still running", overlaps)
	}
}

// TestLeaderWorkFollowsLeadership: on a running cluster, the leader's work
// (scheduler and epoch closer) starts when Raft reports the member leads
// and stops when Raft reports it stepped down: a partitioned leader stops
// its work, and the leader the majority elects starts its own and goes on
// closing epochs.
func TestLeaderWorkFollowsLeadership(t *testing.T) {
	logs := &logRecorder{}
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Logger = slog.New(logs)
		cfg.EpochInterval = 300 * time.Millisecond
		cfg.Schedule.Tick = 20 * time.Millisecond
	})
	epochPast := func(m *Member, past uint64) uint64 {
		t.Helper()
		return testwait.For(t, 30*time.Second, func() (uint64, bool) {
			meta, err := m.fsm.Meta()
			return meta.GetCurrentEpoch(), err == nil && meta.GetCurrentEpoch() > past
		}, "member %s saw no epoch closed after epoch %d", m.ID(), past)
	}
	l := c.leader(10 * time.Second)
	li := indexOf(c, l)
	logs.wait(t, 0, l.ID(), "leadership gained")
	meta, err := l.fsm.Meta()
	if err != nil {
		t.Fatal(err)
	}
	e := epochPast(l, meta.CurrentEpoch)

	mark := logs.mark()
	c.partition(li)
	testwait.For(t, 10*time.Second, func() (bool, bool) { return true, !l.IsLeader() }, "a partitioned leader did not step down")
	logs.wait(t, mark, l.ID(), "leadership lost")
	l2 := testwait.For(t, 10*time.Second, func() (*Member, bool) {
		for i, m := range c.members {
			if i != li && m.IsLeader() {
				return m, true
			}
		}
		return nil, false
	}, "majority elected no leader")
	logs.wait(t, mark, l2.ID(), "leadership gained")
	epochPast(l2, e)
	c.heal()
}

// logRecorder is a slog handler that keeps the messages of Info and above
// with the member attribute they were logged under.
type logRecorder struct {
	mu    sync.Mutex
	lines []string // "member: message"
	attrs []slog.Attr
	root  *logRecorder
}

func (h *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	member := ""
	for _, a := range h.attrs {
		if a.Key == "member" {
			member = a.Value.String()
		}
	}
	root := h
	if h.root != nil {
		root = h.root
	}
	root.mu.Lock()
	root.lines = append(root.lines, member+": "+r.Message)
	root.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	root := h
	if h.root != nil {
		root = h.root
	}
	return &logRecorder{attrs: append(slices.Clip(h.attrs), as...), root: root}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// mark returns the number of lines logged so far.
func (h *logRecorder) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// wait waits until member logged a message that begins with prefix, after
// the first from lines.
func (h *logRecorder) wait(t *testing.T, from int, member, prefix string) {
	t.Helper()
	testwait.UntilNil(t, 10*time.Second, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, l := range h.lines[from:] {
			if strings.HasPrefix(l, member+": "+prefix) {
				return nil
			}
		}
		return fmt.Errorf("%d lines logged", len(h.lines))
	}, "member %s did not log %q", member, prefix)
}
