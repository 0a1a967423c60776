package raftstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle/raftstore"
)

// benchEntry is a small command-sized entry: 128 bytes of data, as a batch
// of verdicts would be after protobuf encoding.
func benchEntry(index uint64) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: make([]byte, 128), AppendedAt: time.Unix(1_800_000_000, 0)}
}

// BenchmarkStoreLogs measures synced appends; each op is one StoreLogs call
// (one fsync) of batch entries. entries/s is the throughput raft gets when
// it batches that many entries per disk write.
func BenchmarkStoreLogs(b *testing.B) {
	for _, batch := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := raftstore.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			logs := make([]*raft.Log, batch)
			for i := range logs {
				logs[i] = benchEntry(0)
			}
			next := uint64(1)
			b.SetBytes(int64(batch * 128))
			b.ResetTimer()
			for b.Loop() {
				for _, l := range logs {
					l.Index = next
					next++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkGetLog reads entries at random-ish positions of a 100k-entry
// log that has been flushed out of the memtable.
func BenchmarkGetLog(b *testing.B) {
	s, err := raftstore.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 100_000
	logs := make([]*raft.Log, 0, 1000)
	for i := uint64(1); i <= n; i++ {
		logs = append(logs, benchEntry(i))
		if len(logs) == cap(logs) {
			if err := s.StoreLogs(logs); err != nil {
				b.Fatal(err)
			}
			logs = logs[:0]
		}
	}
	var l raft.Log
	i := uint64(0)
	b.ResetTimer()
	for b.Loop() {
		i = (i*2654435761 + 1) % n
		if err := s.GetLog(i+1, &l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeleteRangeHead measures the head truncation raft performs after
// each snapshot: delete 1,000 entries at the head of a growing log.
func BenchmarkDeleteRangeHead(b *testing.B) {
	s, err := raftstore.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	next, first := uint64(1), uint64(1)
	logs := make([]*raft.Log, 1000)
	for i := range logs {
		logs[i] = benchEntry(0)
	}
	appendBatch := func() {
		for _, l := range logs {
			l.Index = next
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
	appendBatch()
	appendBatch()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		appendBatch()
		b.StartTimer()
		if err := s.DeleteRange(first, first+999); err != nil {
			b.Fatal(err)
		}
		first += 1000
	}
}
