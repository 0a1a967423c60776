// Package storetest is a conformance suite for hashicorp/raft log and
// stable stores, in the manner of testing/fstest and testing/slogtest: an
// implementation's tests call TestLogStore and TestStableStore (and the
// Persistence variants when the store survives a restart) with a function
// that opens a fresh, empty store.
//
// The suite encodes the semantics raft v1.8.0 relies on, and it passes
// against raft.NewInmemStore, raft's reference implementation. Where the
// reference and durable stores legitimately differ, the suite accepts both:
//
//   - After DeleteRange removes the head of a log that has a gap, FirstIndex
//     may be max+1 (InmemStore) or the next stored index (a store that looks
//     at its data); either lies in (max, next stored index].
//   - GetUint64 of a key never set returns 0 with a nil error (InmemStore)
//     or with an error whose text is "not found" (raft-boltdb, raftstore);
//     raft accepts both.
//
// Get of a key never set must return an error whose text is exactly
// "not found": raft compares the text to tell "never voted" from a failure.
// GetLog of a missing index must return raft.ErrLogNotFound unwrapped:
// raft compares it with ==.
//
// The suite does not cover optional interfaces (raft.MonotonicLogStore,
// raft.CommitTrackingLogStore) or an implementation's own errors.
package storetest

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// LogOpener returns a fresh, empty log store. The opener registers its own
// cleanup (t.Cleanup) for the store it returns.
type LogOpener func(t *testing.T) raft.LogStore

// LogReopener simulates a restart: it closes old and returns a store opened
// on the same storage.
type LogReopener func(t *testing.T, old raft.LogStore) raft.LogStore

// StableOpener returns a fresh, empty stable store.
type StableOpener func(t *testing.T) raft.StableStore

// StableReopener closes old and returns a store opened on the same storage.
type StableReopener func(t *testing.T, old raft.StableStore) raft.StableStore

// entry returns a deterministic entry for index and term, with data that
// identifies it so a read of the wrong entry is detected.
func entry(index, term uint64) *raft.Log {
	return &raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogCommand,
		Data:       fmt.Appendf(nil, "entry-%d-term-%d", index, term),
		AppendedAt: time.Unix(1_700_000_000+int64(index), int64(index%1e9)).UTC(),
	}
}

func entries(from, to, term uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, entry(i, term))
	}
	return out
}

// diffLog describes how got differs from want, or returns "" when they are
// the same. Nil and empty byte slices are equal; times compare as instants.
func diffLog(got, want *raft.Log) string {
	switch {
	case got.Index != want.Index:
		return fmt.Sprintf("Index = %d, want %d", got.Index, want.Index)
	case got.Term != want.Term:
		return fmt.Sprintf("Term = %d, want %d", got.Term, want.Term)
	case got.Type != want.Type:
		return fmt.Sprintf("Type = %v, want %v", got.Type, want.Type)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Sprintf("Data = %.64q (%d bytes), want %.64q (%d bytes)", got.Data, len(got.Data), want.Data, len(want.Data))
	case !bytes.Equal(got.Extensions, want.Extensions):
		return fmt.Sprintf("Extensions = %.64q, want %.64q", got.Extensions, want.Extensions)
	case !got.AppendedAt.Equal(want.AppendedAt):
		return fmt.Sprintf("AppendedAt = %v, want %v", got.AppendedAt, want.AppendedAt)
	case got.AppendedAt.IsZero() != want.AppendedAt.IsZero():
		return fmt.Sprintf("AppendedAt.IsZero() = %v, want %v", got.AppendedAt.IsZero(), want.AppendedAt.IsZero())
	}
	return ""
}

func mustStore(t *testing.T, s raft.LogStore, logs ...*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs(%d entries from %d): %v", len(logs), logs[0].Index, err)
	}
}

func mustDelete(t *testing.T, s raft.LogStore, min, max uint64) {
	t.Helper()
	if err := s.DeleteRange(min, max); err != nil {
		t.Fatalf("DeleteRange(%d, %d): %v", min, max, err)
	}
}

func checkBounds(t *testing.T, s raft.LogStore, first, last uint64) {
	t.Helper()
	gotFirst, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	gotLast, err := s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	if gotFirst != first || gotLast != last {
		t.Fatalf("FirstIndex, LastIndex = %d, %d; want %d, %d", gotFirst, gotLast, first, last)
	}
}

// checkPresent checks that every entry in want is stored as it is.
func checkPresent(t *testing.T, s raft.LogStore, want ...*raft.Log) {
	t.Helper()
	for _, w := range want {
		var got raft.Log
		if err := s.GetLog(w.Index, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", w.Index, err)
		}
		if d := diffLog(&got, w); d != "" {
			t.Fatalf("GetLog(%d): %s", w.Index, d)
		}
	}
}

// checkMissing checks that GetLog of each index in [from, to] returns
// raft.ErrLogNotFound itself, not wrapped: raft's replication compares the
// error with == to decide to send a snapshot instead (replication.go).
func checkMissing(t *testing.T, s raft.LogStore, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != raft.ErrLogNotFound {
			t.Fatalf("GetLog(%d) = %v, want raft.ErrLogNotFound itself (unwrapped)", i, err)
		}
		if i == math.MaxUint64 {
			break
		}
	}
}

// TestLogStore runs the log store conformance suite. open must return a
// fresh, empty store for each call.
func TestLogStore(t *testing.T, open LogOpener) {
	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		checkBounds(t, s, 0, 0)
		checkMissing(t, s, 0, 2)
		checkMissing(t, s, math.MaxUint64, math.MaxUint64)
	})

	t.Run("StoreLogSingle", func(t *testing.T) {
		s := open(t)
		e := entry(1, 1)
		if err := s.StoreLog(e); err != nil {
			t.Fatalf("StoreLog: %v", err)
		}
		checkBounds(t, s, 1, 1)
		checkPresent(t, s, e)
		checkMissing(t, s, 2, 3)
	})

	t.Run("StoreLogsBatch", func(t *testing.T) {
		s := open(t)
		want := entries(1, 100, 3)
		mustStore(t, s, want...)
		checkBounds(t, s, 1, 100)
		checkPresent(t, s, want...)
		checkMissing(t, s, 101, 101)
	})

	t.Run("AppendAcrossBatches", func(t *testing.T) {
		s := open(t)
		for from := uint64(1); from <= 50; from += 10 {
			mustStore(t, s, entries(from, from+9, 1)...)
			checkBounds(t, s, 1, from+9)
		}
		checkPresent(t, s, entries(1, 50, 1)...)
	})

	t.Run("StartAboveOne", func(t *testing.T) {
		// A member that installed a snapshot starts its log past index 1.
		s := open(t)
		mustStore(t, s, entries(1000, 1004, 7)...)
		checkBounds(t, s, 1000, 1004)
		checkMissing(t, s, 1, 999)
	})

	t.Run("Gap", func(t *testing.T) {
		s := open(t)
		mustStore(t, s, entries(1, 3, 1)...)
		mustStore(t, s, entries(10, 12, 2)...)
		checkBounds(t, s, 1, 12)
		checkPresent(t, s, entries(1, 3, 1)...)
		checkPresent(t, s, entries(10, 12, 2)...)
		checkMissing(t, s, 4, 9)

		// Removing the head before the gap: FirstIndex lies in (3, 10].
		mustDelete(t, s, 1, 3)
		first, err := s.FirstIndex()
		if err != nil {
			t.Fatalf("FirstIndex: %v", err)
		}
		if first <= 3 || first > 10 {
			t.Fatalf("FirstIndex after deleting 1..3 of {1..3, 10..12} = %d, want in (3, 10]", first)
		}
		checkPresent(t, s, entries(10, 12, 2)...)
	})

	deleteCases := []struct {
		name        string
		min, max    uint64
		first, last uint64
		gone        [2]uint64
	}{
		{"Head", 1, 4, 5, 10, [2]uint64{1, 4}},
		{"Tail", 7, 10, 1, 6, [2]uint64{7, 10}},
		{"Middle", 4, 6, 1, 10, [2]uint64{4, 6}},
		{"Single", 5, 5, 1, 10, [2]uint64{5, 5}},
		{"All", 1, 10, 0, 0, [2]uint64{1, 10}},
		{"HeadPastTail", 1, 20, 0, 0, [2]uint64{1, 10}},
	}
	for _, tc := range deleteCases {
		t.Run("DeleteRange/"+tc.name, func(t *testing.T) {
			s := open(t)
			all := entries(1, 10, 1)
			mustStore(t, s, all...)
			mustDelete(t, s, tc.min, tc.max)
			checkBounds(t, s, tc.first, tc.last)
			checkMissing(t, s, tc.gone[0], tc.gone[1])
			for _, e := range all {
				if e.Index < tc.gone[0] || e.Index > tc.gone[1] {
					checkPresent(t, s, e)
				}
			}
		})
	}

	t.Run("DeleteRange/RepeatedCompaction", func(t *testing.T) {
		// The pattern raft follows: append, then truncate the head after
		// each snapshot, many times over.
		s := open(t)
		var first, next uint64 = 1, 1
		for round := range 20 {
			mustStore(t, s, entries(next, next+49, uint64(round+1))...)
			next += 50
			mustDelete(t, s, first, next-11) // keep the last 10 entries
			first = next - 10
			checkBounds(t, s, first, next-1)
		}
		checkPresent(t, s, entries(next-10, next-1, 20)...)
	})

	t.Run("DeleteAllThenAppend", func(t *testing.T) {
		// After a snapshot restore raft may remove every entry and resume
		// at a higher index.
		s := open(t)
		mustStore(t, s, entries(1, 10, 1)...)
		mustDelete(t, s, 1, 10)
		checkBounds(t, s, 0, 0)
		mustStore(t, s, entries(500, 502, 4)...)
		checkBounds(t, s, 500, 502)
		checkPresent(t, s, entries(500, 502, 4)...)
	})

	t.Run("ConflictOverwrite", func(t *testing.T) {
		// A follower with a conflicting suffix deletes it and stores the
		// leader's entries at the same indices.
		s := open(t)
		mustStore(t, s, entries(1, 8, 1)...)
		mustDelete(t, s, 5, 8)
		mustStore(t, s, entries(5, 6, 2)...)
		checkBounds(t, s, 1, 6)
		checkPresent(t, s, entries(1, 4, 1)...)
		checkPresent(t, s, entries(5, 6, 2)...)
		checkMissing(t, s, 7, 8)
	})

	t.Run("OverwriteInPlace", func(t *testing.T) {
		s := open(t)
		mustStore(t, s, entries(1, 5, 1)...)
		replaced := entry(3, 9)
		replaced.Type = raft.LogNoop
		replaced.Data = nil
		mustStore(t, s, replaced)
		checkBounds(t, s, 1, 5)
		checkPresent(t, s, replaced)
		checkPresent(t, s, entry(2, 1), entry(4, 1))
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		cases := []*raft.Log{
			{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("cmd")},
			{Index: 2, Term: 1, Type: raft.LogNoop},
			{Index: 3, Term: 2, Type: raft.LogBarrier, Extensions: []byte{0, 1, 2, 255}},
			{Index: 4, Term: 2, Type: raft.LogConfiguration, Data: []byte{0x85, 0xa1}, Extensions: []byte("ext")},
			{Index: 5, Term: math.MaxUint64, Type: raft.LogAddPeerDeprecated, AppendedAt: time.Date(2026, 11, 24, 22, 15, 0, 123456789, time.UTC)},
			{Index: 6, Term: 3, Type: raft.LogRemovePeerDeprecated, AppendedAt: time.Date(1969, 7, 20, 20, 17, 40, 1, time.FixedZone("X", -5*3600))},
			{Index: 7, Term: 3, Type: raft.LogType(200), Data: []byte{}, Extensions: []byte{}},
			{Index: 8, Term: 3, Type: raft.LogCommand, Data: bytes.Repeat([]byte{0}, 1000), AppendedAt: time.Now()},
		}
		mustStore(t, s, cases...)
		checkPresent(t, s, cases...)
		var zero raft.Log
		if err := s.GetLog(1, &zero); err != nil {
			t.Fatalf("GetLog(1): %v", err)
		}
		if !zero.AppendedAt.IsZero() {
			t.Fatalf("unset AppendedAt read back as %v, want the zero time", zero.AppendedAt)
		}
	})

	t.Run("GetLogOverwritesTarget", func(t *testing.T) {
		// raft reuses Log values; every field must be replaced.
		s := open(t)
		plain := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}
		mustStore(t, s, plain)
		dst := raft.Log{Index: 9, Term: 9, Type: raft.LogBarrier, Data: []byte("stale"), Extensions: []byte("stale"), AppendedAt: time.Now()}
		if err := s.GetLog(1, &dst); err != nil {
			t.Fatalf("GetLog(1): %v", err)
		}
		if d := diffLog(&dst, plain); d != "" {
			t.Fatalf("GetLog into a used Log: %s", d)
		}
	})

	t.Run("BigEntries", func(t *testing.T) {
		s := open(t)
		big := []*raft.Log{
			{Index: 1, Term: 1, Type: raft.LogCommand, Data: patterned(4<<20, 1), Extensions: patterned(1<<20, 2)},
			{Index: 2, Term: 1, Type: raft.LogCommand, Data: patterned(1<<20, 3)},
			entry(3, 1),
		}
		mustStore(t, s, big...)
		checkPresent(t, s, big...)
	})

	t.Run("ConcurrentReadsDuringWrites", func(t *testing.T) {
		s := open(t)
		mustStore(t, s, entry(1, 1))
		const batches, batchSize = 40, 8
		done := make(chan struct{})
		errc := make(chan error, 8)
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each pass reads first and then checks for the end, so every
				// reader reads at least once.
				for {
					last, err := s.LastIndex()
					if err != nil {
						errc <- fmt.Errorf("LastIndex: %w", err)
						return
					}
					first, err := s.FirstIndex()
					if err != nil || first != 1 {
						errc <- fmt.Errorf("FirstIndex = %d, %v; want 1", first, err)
						return
					}
					var got raft.Log
					if err := s.GetLog(last, &got); err != nil {
						errc <- fmt.Errorf("GetLog(LastIndex()=%d): %w", last, err)
						return
					}
					if d := diffLog(&got, entry(last, 1)); d != "" {
						errc <- fmt.Errorf("GetLog(%d) during writes: %s", last, d)
						return
					}
					select {
					case <-done:
						return
					default:
					}
				}
			}()
		}
		for b := range batches {
			from := uint64(2 + b*batchSize)
			if err := s.StoreLogs(entries(from, from+batchSize-1, 1)); err != nil {
				errc <- fmt.Errorf("StoreLogs: %w", err)
				break
			}
		}
		close(done)
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
		checkBounds(t, s, 1, 1+batches*batchSize)
	})
}

// TestLogStorePersistence checks that entries, gaps and deletions survive
// a restart. reopen closes the store it is given and reopens its storage.
func TestLogStorePersistence(t *testing.T, open LogOpener, reopen LogReopener) {
	t.Run("Empty", func(t *testing.T) {
		s := reopen(t, open(t))
		checkBounds(t, s, 0, 0)
	})
	t.Run("EntriesAndDeletions", func(t *testing.T) {
		s := open(t)
		mustStore(t, s, entries(1, 20, 1)...)
		ext := &raft.Log{Index: 21, Term: 2, Type: raft.LogConfiguration, Data: []byte("cfg"), Extensions: []byte("ext"), AppendedAt: time.Unix(1_800_000_000, 42)}
		mustStore(t, s, ext)
		mustDelete(t, s, 1, 5)   // head
		mustDelete(t, s, 10, 12) // middle
		s = reopen(t, s)
		checkBounds(t, s, 6, 21)
		checkMissing(t, s, 1, 5)
		checkMissing(t, s, 10, 12)
		checkPresent(t, s, entries(6, 9, 1)...)
		checkPresent(t, s, entries(13, 20, 1)...)
		checkPresent(t, s, ext)

		// The reopened store keeps working.
		mustStore(t, s, entries(22, 25, 3)...)
		mustDelete(t, s, 24, 25)
		s = reopen(t, s)
		checkBounds(t, s, 6, 23)
		checkPresent(t, s, entries(22, 23, 3)...)
	})
	t.Run("AllDeleted", func(t *testing.T) {
		s := open(t)
		mustStore(t, s, entries(1, 5, 1)...)
		mustDelete(t, s, 1, 5)
		s = reopen(t, s)
		checkBounds(t, s, 0, 0)
	})
}

// patterned returns n bytes that differ by position and seed.
func patterned(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed ^ byte(i>>8)
	}
	return b
}

// isNotFound reports whether err is raft's "not found" signal.
func isNotFound(err error) bool {
	return err != nil && err.Error() == "not found"
}

// TestStableStore runs the stable store conformance suite. open must
// return a fresh, empty store for each call.
func TestStableStore(t *testing.T, open StableOpener) {
	t.Run("Missing", func(t *testing.T) {
		s := open(t)
		for _, k := range [][]byte{[]byte("CurrentTerm"), []byte("LastVoteCand"), {0}, []byte("x")} {
			if v, err := s.Get(k); !isNotFound(err) {
				t.Errorf("Get(%q) of a missing key = %q, %v; want an error with text \"not found\"", k, v, err)
			}
			v, err := s.GetUint64(k)
			if v != 0 || (err != nil && !isNotFound(err)) {
				t.Errorf("GetUint64(%q) of a missing key = %d, %v; want 0 and nil or \"not found\"", k, v, err)
			}
		}
	})

	t.Run("SetGet", func(t *testing.T) {
		cases := []struct {
			name     string
			key, val []byte
		}{
			{"RaftVoteCandidate", []byte("LastVoteCand"), []byte("127.0.0.1:7000")},
			{"BinaryKey", []byte{0, 0xff, 0}, []byte{1, 2, 3}},
			{"BinaryValue", []byte("b"), []byte{0, 0, 0}},
			{"LargeValue", []byte("large"), patterned(1<<20, 7)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				if err := s.Set(tc.key, tc.val); err != nil {
					t.Fatalf("Set(%q): %v", tc.key, err)
				}
				got, err := s.Get(tc.key)
				if err != nil {
					t.Fatalf("Get(%q): %v", tc.key, err)
				}
				if !bytes.Equal(got, tc.val) {
					t.Fatalf("Get(%q) = %.32q, want %.32q", tc.key, got, tc.val)
				}
			})
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := open(t)
		k := []byte("LastVoteCand")
		for _, v := range []string{"node-a", "node-bb", "c"} {
			if err := s.Set(k, []byte(v)); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got, err := s.Get(k)
			if err != nil || string(got) != v {
				t.Fatalf("Get after Set(%q) = %q, %v", v, got, err)
			}
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		s := open(t)
		kv := map[string]string{"a": "1", "ab": "2", "abc": "3", "b": "4"}
		for k, v := range kv {
			if err := s.Set([]byte(k), []byte(v)); err != nil {
				t.Fatalf("Set(%q): %v", k, err)
			}
		}
		for k, v := range kv {
			got, err := s.Get([]byte(k))
			if err != nil || string(got) != v {
				t.Fatalf("Get(%q) = %q, %v; want %q", k, got, err, v)
			}
		}
		if _, err := s.Get([]byte("abcd")); !isNotFound(err) {
			t.Fatalf("Get of an unset key sharing a prefix = %v, want \"not found\"", err)
		}
	})

	t.Run("Uint64", func(t *testing.T) {
		cases := []struct {
			name string
			key  string
			vals []uint64
		}{
			{"CurrentTerm", "CurrentTerm", []uint64{1, 2, 3}},
			{"LastVoteTerm", "LastVoteTerm", []uint64{7}},
			{"Zero", "zero", []uint64{0}},
			{"Max", "max", []uint64{math.MaxUint64}},
			{"Decrease", "dec", []uint64{1 << 40, 5}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				for _, v := range tc.vals {
					if err := s.SetUint64([]byte(tc.key), v); err != nil {
						t.Fatalf("SetUint64(%q, %d): %v", tc.key, v, err)
					}
					got, err := s.GetUint64([]byte(tc.key))
					if err != nil || got != v {
						t.Fatalf("GetUint64(%q) = %d, %v; want %d", tc.key, got, err, v)
					}
				}
			})
		}
	})
}

// TestStableStorePersistence checks that values survive a restart.
func TestStableStorePersistence(t *testing.T, open StableOpener, reopen StableReopener) {
	s := open(t)
	if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatalf("SetUint64: %v", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-3")); err != nil {
		t.Fatalf("Set: %v", err)
	}
	s = reopen(t, s)
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("GetUint64(CurrentTerm) after restart = %d, %v; want 42", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-3" {
		t.Fatalf("Get(LastVoteCand) after restart = %q, %v; want node-3", v, err)
	}
	if _, err := s.Get([]byte("LastVoteTerm")); !isNotFound(err) {
		t.Fatalf("Get of a never-set key after restart = %v, want \"not found\"", err)
	}
}
