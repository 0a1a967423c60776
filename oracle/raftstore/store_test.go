package raftstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle/raftstore"
	"github.com/truegpu/truegpu/oracle/raftstore/storetest"
)

// dirs remembers the directory of each open store so reopen can find it.
var dirs sync.Map // *raftstore.Store -> string

func openStore(t *testing.T) *raftstore.Store {
	t.Helper()
	return openAt(t, t.TempDir(), nil)
}

func openAt(t *testing.T, dir string, opts *raftstore.Options) *raftstore.Store {
	t.Helper()
	s, err := raftstore.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	dirs.Store(s, dir)
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, raftstore.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func reopenStore(t *testing.T, old *raftstore.Store) *raftstore.Store {
	t.Helper()
	dir, ok := dirs.Load(old)
	if !ok {
		t.Fatal("reopen of a store not opened by openStore")
	}
	if err := old.Close(); err != nil {
		t.Fatalf("Close before reopen: %v", err)
	}
	return openAt(t, dir.(string), nil)
}

func TestConformance(t *testing.T) {
	t.Run("LogStore", func(t *testing.T) {
		storetest.TestLogStore(t, func(t *testing.T) raft.LogStore { return openStore(t) })
	})
	t.Run("LogStorePersistence", func(t *testing.T) {
		storetest.TestLogStorePersistence(t,
			func(t *testing.T) raft.LogStore { return openStore(t) },
			func(t *testing.T, old raft.LogStore) raft.LogStore { return reopenStore(t, old.(*raftstore.Store)) })
	})
	t.Run("StableStore", func(t *testing.T) {
		storetest.TestStableStore(t, func(t *testing.T) raft.StableStore { return openStore(t) })
	})
	t.Run("StableStorePersistence", func(t *testing.T) {
		storetest.TestStableStorePersistence(t,
			func(t *testing.T) raft.StableStore { return openStore(t) },
			func(t *testing.T, old raft.StableStore) raft.StableStore {
				return reopenStore(t, old.(*raftstore.Store))
			})
	})
}

func TestMissingKeyMatchesRaft(t *testing.T) {
	s := openStore(t)
	_, err := s.Get([]byte("CurrentTerm"))
	if !errors.Is(err, raftstore.ErrKeyNotFound) || err.Error() != "not found" {
		t.Fatalf("Get of a missing key = %v, want ErrKeyNotFound with text \"not found\"", err)
	}
	v, err := s.GetUint64([]byte("CurrentTerm"))
	if v != 0 || !errors.Is(err, raftstore.ErrKeyNotFound) {
		t.Fatalf("GetUint64 of a missing key = %d, %v; want 0, ErrKeyNotFound", v, err)
	}
	// raft itself must accept a fresh store as having no state.
	has, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore())
	if err != nil || has {
		t.Fatalf("raft.HasExistingState on a fresh store = %v, %v; want false, nil", has, err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	has, err = raft.HasExistingState(s, s, raft.NewInmemSnapshotStore())
	if err != nil || !has {
		t.Fatalf("raft.HasExistingState after setting a term = %v, %v; want true, nil", has, err)
	}
}

func TestDeleteRangeWholeKeyspace(t *testing.T) {
	s := openStore(t)
	if err := s.StoreLogs([]*raft.Log{{Index: 1}, {Index: 2}, {Index: math.MaxUint64}}); err != nil {
		t.Fatal(err)
	}
	if last, _ := s.LastIndex(); last != math.MaxUint64 {
		t.Fatalf("LastIndex = %d, want MaxUint64", last)
	}
	if err := s.DeleteRange(0, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 0 || last != 0 {
		t.Fatalf("bounds after deleting everything = %d, %d; want 0, 0", first, last)
	}
	// Stable keys live in another namespace and survive log deletion.
	if err := s.SetUint64([]byte("CurrentTerm"), 5); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(0, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 5 {
		t.Fatalf("GetUint64 after DeleteRange = %d, %v; want 5", v, err)
	}
	// min > max is a no-op.
	if err := s.StoreLog(&raft.Log{Index: 7}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(8, 6); err != nil {
		t.Fatal(err)
	}
	if err := s.GetLog(7, &raft.Log{}); err != nil {
		t.Fatalf("GetLog(7) after DeleteRange(8, 6): %v", err)
	}
}

func TestGetDoesNotAlias(t *testing.T) {
	s := openStore(t)
	if err := s.Set([]byte("k"), []byte("value")); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Get([]byte("k"))
	v[0] = 'X'
	again, _ := s.Get([]byte("k"))
	if string(again) != "value" {
		t.Fatalf("mutating a Get result changed the store: %q", again)
	}
	in := &raft.Log{Index: 1, Data: []byte("data")}
	if err := s.StoreLog(in); err != nil {
		t.Fatal(err)
	}
	in.Data[0] = 'X'
	var out raft.Log
	if err := s.GetLog(1, &out); err != nil || string(out.Data) != "data" {
		t.Fatalf("GetLog after mutating the stored Log's Data = %q, %v; want \"data\"", out.Data, err)
	}
}

func TestEntryTooLarge(t *testing.T) {
	s := openAt(t, t.TempDir(), &raftstore.Options{MaxEntrySize: 1024})
	ok := &raft.Log{Index: 1, Data: make([]byte, 900)}
	big := &raft.Log{Index: 2, Data: make([]byte, 1000)}
	err := s.StoreLogs([]*raft.Log{ok, big})
	if !errors.Is(err, raftstore.ErrEntryTooLarge) {
		t.Fatalf("StoreLogs with an oversized entry = %v, want ErrEntryTooLarge", err)
	}
	// Nothing of the batch was written.
	if last, _ := s.LastIndex(); last != 0 {
		t.Fatalf("LastIndex after a rejected batch = %d, want 0", last)
	}
	if err := s.GetLog(1, &raft.Log{}); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(1) after a rejected batch = %v, want ErrLogNotFound", err)
	}
	if err := s.StoreLog(ok); err != nil {
		t.Fatalf("StoreLog of an entry under the limit: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := openStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Close":       s.Close,
		"FirstIndex":  func() error { _, err := s.FirstIndex(); return err },
		"LastIndex":   func() error { _, err := s.LastIndex(); return err },
		"GetLog":      func() error { return s.GetLog(1, &raft.Log{}) },
		"StoreLog":    func() error { return s.StoreLog(&raft.Log{Index: 1}) },
		"StoreLogs":   func() error { return s.StoreLogs([]*raft.Log{{Index: 1}}) },
		"DeleteRange": func() error { return s.DeleteRange(1, 2) },
		"Set":         func() error { return s.Set([]byte("k"), []byte("v")) },
		"Get":         func() error { _, err := s.Get([]byte("k")); return err },
		"SetUint64":   func() error { return s.SetUint64([]byte("k"), 1) },
		"GetUint64":   func() error { _, err := s.GetUint64([]byte("k")); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, raftstore.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name  string
		opts  *raftstore.Options
		wants []string // substrings, one per expected problem
	}{
		{"Nil", nil, nil},
		{"Zero", &raftstore.Options{}, nil},
		{"Valid", &raftstore.Options{MaxEntrySize: 1 << 20, CacheSize: 1 << 20, MemTableSize: 1 << 20}, nil},
		{"NegativeEntry", &raftstore.Options{MaxEntrySize: -1}, []string{"MaxEntrySize"}},
		{"HugeEntry", &raftstore.Options{MaxEntrySize: raftstore.MaxEntrySizeLimit + 1}, []string{"MaxEntrySize"}},
		{"EntryBelowHeader", &raftstore.Options{MaxEntrySize: 10}, []string{"header"}},
		{"NegativeCache", &raftstore.Options{CacheSize: -5}, []string{"CacheSize"}},
		{"TinyMemTable", &raftstore.Options{MemTableSize: 1}, []string{"MemTableSize"}},
		{"AllAtOnce", &raftstore.Options{MaxEntrySize: -1, CacheSize: -1, MemTableSize: 1 << 40}, []string{"MaxEntrySize", "CacheSize", "MemTableSize"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, raftstore.ErrInvalidOptions) {
				t.Fatalf("Validate() = %v, want ErrInvalidOptions", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, missing a problem mentioning %q", err, w)
				}
			}
			if _, oerr := raftstore.Open(t.TempDir(), tc.opts); !errors.Is(oerr, raftstore.ErrInvalidOptions) {
				t.Errorf("Open with invalid options = %v, want ErrInvalidOptions", oerr)
			}
		})
	}
}

func TestOpenIncompatible(t *testing.T) {
	cases := []struct {
		name       string
		key, value []byte
	}{
		{"ForeignDatabase", []byte("someone-else"), []byte("data")},
		{"NewerLayout", []byte("\x00layout"), []byte{0, 0, 0, 0, 0, 0, 0, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Set(tc.key, tc.value, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err := raftstore.Open(dir, nil); !errors.Is(err, raftstore.ErrIncompatible) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want ErrIncompatible", err)
			}
		})
	}
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(string, ...any)        {}
func (quietLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openAt(t, dir, nil)
	if s, err := raftstore.Open(dir, nil); err == nil {
		s.Close()
		t.Fatal("second Open of a directory in use succeeded, want a lock error")
	}
}

func TestCorruptEntryOnDisk(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, dir, nil)
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Data: []byte("a")}, {Index: 2, Data: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage the entries behind the store's back: entry 1 gets garbage,
	// entry 2 gets the valid encoding of a different index.
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	key := func(i byte) []byte { return []byte{1, 0, 0, 0, 0, 0, 0, 0, i} }
	if err := db.Set(key(1), []byte{1, 2, 3}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	wrong, closer, err := db.Get(key(2))
	if err != nil {
		t.Fatal(err)
	}
	moved := bytes.Clone(wrong)
	closer.Close()
	if err := db.Set(key(3), moved, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir, nil)
	for _, idx := range []uint64{1, 3} {
		if err := s.GetLog(idx, &raft.Log{}); !errors.Is(err, raftstore.ErrCorrupt) {
			t.Errorf("GetLog(%d) of a damaged entry = %v, want ErrCorrupt", idx, err)
		}
	}
	if err := s.Set([]byte("short"), []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUint64([]byte("short")); !errors.Is(err, raftstore.ErrCorrupt) {
		t.Errorf("GetUint64 of a 2-byte value = %v, want ErrCorrupt", err)
	}
}
