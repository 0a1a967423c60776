package raftstore_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle/raftstore"
)

// model is the expected content of a store: what was acknowledged.
type model struct {
	logs   map[uint64][]byte
	stable map[string]uint64
}

func (m *model) bounds() (uint64, uint64) {
	if len(m.logs) == 0 {
		return 0, 0
	}
	keys := make([]uint64, 0, len(m.logs))
	for k := range m.logs {
		keys = append(keys, k)
	}
	return slices.Min(keys), slices.Max(keys)
}

// TestCrashConsistency runs a random sequence of raft-shaped operations
// (appends, conflict overwrites, head truncations, term updates) on a
// crashable in-memory file system, simulates a power loss after random
// acknowledged operations, and checks that the reopened store holds
// exactly what was acknowledged.
func TestCrashConsistency(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			fs := vfs.NewCrashableMem()
			opts := &raftstore.Options{FS: fs, MemTableSize: 64 << 10} // small memtable: flushes happen
			s, err := raftstore.Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			m := &model{logs: map[uint64][]byte{}, stable: map[string]uint64{}}
			next, term := uint64(1), uint64(1)
			for step := range 300 {
				switch op := rng.IntN(10); {
				case op < 6: // append a batch
					n := 1 + rng.IntN(40)
					var batch []*raft.Log
					for range n {
						data := bytes.Repeat([]byte{byte(next)}, rng.IntN(600))
						batch = append(batch, &raft.Log{Index: next, Term: term, Data: data})
						m.logs[next] = data
						next++
					}
					if err := s.StoreLogs(batch); err != nil {
						t.Fatal(err)
					}
				case op < 7: // conflict: drop a suffix
					_, last := m.bounds()
					if last == 0 {
						continue
					}
					from := last - uint64(rng.IntN(5))
					if err := s.DeleteRange(from, last); err != nil {
						t.Fatal(err)
					}
					for i := from; i <= last; i++ {
						delete(m.logs, i)
					}
					next = from
					term++
				case op < 8: // compaction: drop a prefix
					first, last := m.bounds()
					if last == 0 {
						continue
					}
					to := first + uint64(rng.IntN(int(last-first)+1))
					if err := s.DeleteRange(first, to); err != nil {
						t.Fatal(err)
					}
					for i := first; i <= to; i++ {
						delete(m.logs, i)
					}
				default:
					if err := s.SetUint64([]byte("CurrentTerm"), term); err != nil {
						t.Fatal(err)
					}
					m.stable["CurrentTerm"] = term
				}
				if rng.IntN(15) != 0 {
					continue
				}
				// Power loss now: only synced data survives (plus, in half of
				// the crashes, a random part of unsynced background writes).
				cfg := vfs.CrashCloneCfg{}
				if rng.IntN(2) == 0 {
					cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, uint64(step)))}
				}
				clone := fs.CrashClone(cfg)
				r, err := raftstore.Open("db", &raftstore.Options{FS: clone})
				if err != nil {
					t.Fatalf("step %d: reopen after crash: %v", step, err)
				}
				checkModel(t, step, r, m)
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func checkModel(t *testing.T, step int, s *raftstore.Store, m *model) {
	t.Helper()
	wantFirst, wantLast := m.bounds()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != wantFirst || last != wantLast {
		t.Fatalf("step %d: after crash bounds = %d, %d; want %d, %d", step, first, last, wantFirst, wantLast)
	}
	for i := wantFirst; i <= wantLast && wantLast != 0; i++ {
		var l raft.Log
		err := s.GetLog(i, &l)
		want, ok := m.logs[i]
		switch {
		case ok && err != nil:
			t.Fatalf("step %d: acknowledged entry %d lost: %v", step, i, err)
		case ok && !bytes.Equal(l.Data, want):
			t.Fatalf("step %d: entry %d has %d bytes of data, want %d", step, i, len(l.Data), len(want))
		case !ok && err == nil:
			t.Fatalf("step %d: deleted entry %d came back", step, i)
		}
	}
	for k, want := range m.stable {
		if got, err := s.GetUint64([]byte(k)); err != nil || got != want {
			t.Fatalf("step %d: %s after crash = %d, %v; want %d", step, k, got, err, want)
		}
	}
}
