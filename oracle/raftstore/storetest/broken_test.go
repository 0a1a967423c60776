package storetest_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle/raftstore/storetest"
)

// brokenStore is raft's InmemStore with at most one defect switched on.
type brokenStore struct {
	*raft.InmemStore
	loseLast      bool // StoreLogs drops the last entry of a batch of two or more
	ignoreDelete  bool // DeleteRange does nothing and reports success
	wrapNotFound  bool // GetLog wraps raft.ErrLogNotFound
	keepStale     bool // GetLog leaves fields the stored entry does not set
	keepFirstSet  bool // Set of a key already set keeps the old value
	notFoundWords bool // Get of a missing key says "key not found"
}

func (s *brokenStore) StoreLogs(logs []*raft.Log) error {
	if s.loseLast && len(logs) > 1 {
		logs = logs[:len(logs)-1]
	}
	return s.InmemStore.StoreLogs(logs)
}

func (s *brokenStore) DeleteRange(min, max uint64) error {
	if s.ignoreDelete {
		return nil
	}
	return s.InmemStore.DeleteRange(min, max)
}

func (s *brokenStore) GetLog(index uint64, log *raft.Log) error {
	var got raft.Log
	err := s.InmemStore.GetLog(index, &got)
	if err != nil {
		if s.wrapNotFound {
			return fmt.Errorf("get log %d: %w", index, err)
		}
		return err
	}
	if !s.keepStale {
		*log = got
		return nil
	}
	log.Index, log.Term, log.Type, log.Data = got.Index, got.Term, got.Type, got.Data
	if got.Extensions != nil {
		log.Extensions = got.Extensions
	}
	if !got.AppendedAt.IsZero() {
		log.AppendedAt = got.AppendedAt
	}
	return nil
}

func (s *brokenStore) Set(key, val []byte) error {
	if s.keepFirstSet {
		if _, err := s.InmemStore.Get(key); err == nil {
			return nil
		}
	}
	return s.InmemStore.Set(key, val)
}

func (s *brokenStore) Get(key []byte) ([]byte, error) {
	v, err := s.InmemStore.Get(key)
	if err != nil && s.notFoundWords {
		return nil, errors.New("key not found")
	}
	return v, err
}

// brokenCases are the defects the suite must catch, each with a subtest
// that must fail for it. "Intact" switches no defect on and must pass, so
// the failures come from the defects and not from the wrapper.
var brokenCases = []struct {
	name      string
	store     brokenStore
	forgetful bool   // the stable store loses everything on reopen
	mustFail  string // subtest path under the case, "" for none
}{
	{name: "Intact"},
	{name: "LoseLast", store: brokenStore{loseLast: true}, mustFail: "LogStore/StoreLogsBatch"},
	{name: "IgnoreDeleteRange", store: brokenStore{ignoreDelete: true}, mustFail: "LogStore/DeleteRange/Head"},
	{name: "WrappedErrLogNotFound", store: brokenStore{wrapNotFound: true}, mustFail: "LogStore/Empty"},
	{name: "StaleTarget", store: brokenStore{keepStale: true}, mustFail: "LogStore/GetLogOverwritesTarget"},
	{name: "StaleValue", store: brokenStore{keepFirstSet: true}, mustFail: "StableStore/Overwrite"},
	{name: "NotFoundText", store: brokenStore{notFoundWords: true}, mustFail: "StableStore/Missing"},
	{name: "ForgetsOnReopen", forgetful: true, mustFail: "StableStorePersistence"},
}

// brokenEnv makes the test binary run TestBrokenStoreSuites, which fails
// by design; TestSuiteCatchesBrokenStores sets it for its child process.
const brokenEnv = "STORETEST_RUN_BROKEN_STORES"

// TestSuiteCatchesBrokenStores runs the suite against stores with one
// defect each, in a child process (the suite fails the *testing.T it is
// given), and checks that each defect fails the subtest that covers it
// and that the store without a defect passes.
func TestSuiteCatchesBrokenStores(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("running as the child of TestSuiteCatchesBrokenStores")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreSuites$", "-test.count=1")
	cmd.Env = append(os.Environ(), brokenEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the suite passed against every broken store (err %v); output:\n%s", err, out)
	}
	for _, c := range brokenCases {
		failed := regexp.MustCompile(`--- FAIL: TestBrokenStoreSuites/` + c.name + `[/ ]`).Match(out)
		if c.mustFail == "" {
			if failed {
				t.Errorf("the suite failed against the store with no defect (%s); output:\n%s", c.name, out)
			}
			continue
		}
		want := regexp.MustCompile(`--- FAIL: TestBrokenStoreSuites/` + c.name + `/` + regexp.QuoteMeta(c.mustFail) + ` `)
		if !want.Match(out) {
			t.Errorf("defect %s: subtest %s did not fail; output:\n%s", c.name, c.mustFail, out)
		}
	}
}

// TestBrokenStoreSuites runs the suite against each broken store. It runs
// only in the child process of TestSuiteCatchesBrokenStores.
func TestBrokenStoreSuites(t *testing.T) {
	if os.Getenv(brokenEnv) == "" {
		t.Skip("fails by design; run by TestSuiteCatchesBrokenStores")
	}
	for _, c := range brokenCases {
		t.Run(c.name, func(t *testing.T) {
			open := func() *brokenStore {
				s := c.store
				s.InmemStore = raft.NewInmemStore()
				return &s
			}
			t.Run("LogStore", func(t *testing.T) {
				storetest.TestLogStore(t, func(*testing.T) raft.LogStore { return open() })
			})
			t.Run("StableStore", func(t *testing.T) {
				storetest.TestStableStore(t, func(*testing.T) raft.StableStore { return open() })
			})
			t.Run("StableStorePersistence", func(t *testing.T) {
				storetest.TestStableStorePersistence(t,
					func(*testing.T) raft.StableStore { return open() },
					func(_ *testing.T, old raft.StableStore) raft.StableStore {
						if c.forgetful {
							return open()
						}
						return old
					})
			})
		})
	}
}
