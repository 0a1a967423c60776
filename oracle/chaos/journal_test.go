package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func passedRun(seed uint64) *RunResult {
	return &RunResult{Seed: seed, Ops: 100, Acked: 40, Linearizable: LinearizabilityResult{Result: porcupine.Ok}, ReportsResumed: true, Duration: 20 * time.Second}
}

// appendTornLine appends the start of an entry, as a kill in the middle
// of a write leaves it.
func appendTornLine(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(`{"campaign":7,"episodes":1,"fau`); err != nil {
		t.Fatal(err)
	}
}

// TestJournalResumes: runs recorded in one sitting are counted, not run, in
// the next; a line cut short by a kill is dropped and the file stays
// appendable; a corrupt line is an error naming it.
func TestJournalResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "campaign.jsonl")
	j, err := OpenJournal(path, "abc123")
	if err != nil {
		t.Fatal(err)
	}
	failed := passedRun(RunSeed(7, 1, 0))
	failed.Lost = []string{"verdict 01"}
	for _, rec := range []struct {
		kind Fault
		i    int
		r    *RunResult
	}{{KillLeader, 0, passedRun(RunSeed(7, 0, 0))}, {KillFollower, 0, failed}, {KillLeader, 1, passedRun(RunSeed(7, 0, 1))}} {
		if err := j.Record(7, 1, rec.kind, rec.i, rec.r); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	appendTornLine(t, path)

	j, err = OpenJournal(path, "def456")
	if err != nil {
		t.Fatalf("reopen after a torn line: %v", err)
	}
	defer j.Close()
	// Every run of this two-kind, two-run campaign but kill-follower 1 is
	// recorded: Campaign counts three from the journal and starts one run
	// (here a stand-in for the real one, which could not start a cluster),
	// which is recorded too.
	var started []uint64
	runOne = func(_ context.Context, cfg RunConfig) *RunResult {
		started = append(started, cfg.Seed)
		return &RunResult{Seed: cfg.Seed, Err: errors.New("the cluster did not start")}
	}
	t.Cleanup(func() { runOne = Run })
	dir := t.TempDir()
	rows, err := Campaign(context.Background(), RunConfig{Dir: dir}, []Fault{KillLeader, KillFollower}, 2, 7, time.Time{}, j, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Runs != 2 || rows[0].Passed != 2 || rows[0].Ops != 200 || rows[0].Acked != 80 {
		t.Fatalf("kill-leader row %+v, want the two recorded passed runs", rows[0])
	}
	if rows[1].Runs != 2 || rows[1].Lost != 1 || rows[1].Harness != 1 || len(rows[1].FailedSeeds) != 2 {
		t.Fatalf("kill-follower row %+v, want the recorded run that lost an item and a new one that could not start", rows[1])
	}
	if !reflect.DeepEqual(started, []uint64{RunSeed(7, 1, 1)}) {
		t.Fatalf("runs started: seeds %v, want only kill-follower 1's %d", started, RunSeed(7, 1, 1))
	}
	if got := j.Builds(7, 1); !reflect.DeepEqual(got, []string{"abc123: 3", "def456: 1"}) {
		t.Fatalf("builds %v", got)
	}
	if _, ok := j.Done(8, 1, KillLeader, 0); ok {
		t.Fatal("a run of another campaign seed counted")
	}
	j.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("journal has %d lines, want 4 (the torn one dropped):\n%s", len(lines), data)
	}
	for _, l := range lines {
		if _, err := ParseJournalEntry([]byte(l)); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}

	// A corrupt line that is not the last one is refused, by number.
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(lines[0]+"\n{\"campaign\":\"x\"}\n"+lines[1]+"\n"), 0o644)
	if _, err := OpenJournal(bad, "x"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("corrupt line 2: %v", err)
	}
}

// TestParseJournalEntryRefuses: entries whose counts are not one run's.
func TestParseJournalEntryRefuses(t *testing.T) {
	row := Row{Fault: KillLeader}
	row.add(passedRun(5))
	good := JournalEntry{Campaign: 1, Episodes: 1, Fault: KillLeader, Seed: 5, Build: "b", Row: row}
	enc := func(e JournalEntry) []byte { b, _ := json.Marshal(e); return b }
	if _, err := ParseJournalEntry(enc(good)); err != nil {
		t.Fatalf("a good entry: %v", err)
	}
	for name, mutate := range map[string]func(*JournalEntry){
		"two runs":       func(e *JournalEntry) { e.Row.Runs = 2 },
		"negative lost":  func(e *JournalEntry) { e.Row.Lost = -1 },
		"unknown kind":   func(e *JournalEntry) { e.Fault, e.Row.Fault = "kill-all", "kill-all" },
		"kind mismatch":  func(e *JournalEntry) { e.Row.Fault = KillFollower },
		"failed no seed": func(e *JournalEntry) { e.Row.Passed = 0 },
		"no episodes":    func(e *JournalEntry) { e.Episodes = 0 },
	} {
		e := good
		e.Row.FailedSeeds = nil
		mutate(&e)
		if _, err := ParseJournalEntry(enc(e)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseJournalEntry([]byte(`{"campaign":1,"extra":2}`)); err == nil || strings.Contains(err.Error(), "json") {
		t.Errorf("unknown field: %v (want a refusal without decoder internals)", err)
	}
}

func FuzzParseJournalEntry(f *testing.F) {
	row := Row{Fault: PauseLeader}
	row.add(passedRun(9))
	b, _ := json.Marshal(JournalEntry{Campaign: 3, Episodes: 2, Fault: PauseLeader, Index: 4, Seed: 9, Build: "abc", Row: row})
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"campaign":1}{"campaign":2}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseJournalEntry(line)
		if err != nil {
			if strings.Contains(err.Error(), "json:") {
				t.Fatalf("decoder internals in the message: %v", err)
			}
			return
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := ParseJournalEntry(again)
		if err != nil {
			t.Fatalf("an accepted entry, written again, is refused: %v\n%s", err, again)
		}
		if third, _ := json.Marshal(e2); string(third) != string(again) {
			t.Fatalf("an accepted entry does not survive a round trip:\n%s\n%s", again, third)
		}
	})
}

// TestCampaignParallel: with -parallel 3 no more than three runs go at
// once and three do, every run of the campaign runs exactly once with the
// seed it has when the runs go one at a time, each is recorded, a failed
// run's seed is in its row (sorted), and a budget stops new runs while
// letting the started ones finish and be recorded.
func TestCampaignParallel(t *testing.T) {
	var (
		mu            sync.Mutex
		running, peak int
		started       = map[uint64]int{}
	)
	runOne = func(_ context.Context, cfg RunConfig) *RunResult {
		mu.Lock()
		running++
		peak = max(peak, running)
		started[cfg.Seed]++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		r := passedRun(cfg.Seed)
		if cfg.Seed%2 == 0 {
			r.Lost = []string{"verdict 01"}
		}
		return r
	}
	t.Cleanup(func() { runOne = Run })
	kinds := []Fault{KillLeader, KillFollower, PauseLeader}
	j, err := OpenJournal(filepath.Join(t.TempDir(), "campaign.jsonl"), "abc123")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rows, err := Campaign(context.Background(), RunConfig{Dir: t.TempDir()}, kinds, 4, 9, time.Time{}, j, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if peak != 3 {
		t.Errorf("at most %d runs went at once, want 3", peak)
	}
	for k, kind := range kinds {
		var failed []uint64
		for i := range 4 {
			s := RunSeed(9, k, i)
			if started[s] != 1 {
				t.Errorf("%s run %d (seed %d) ran %d times", kind, i, s, started[s])
			}
			if _, ok := j.Done(9, 1, kind, i); !ok {
				t.Errorf("%s run %d not recorded", kind, i)
			}
			if s%2 == 0 {
				failed = append(failed, s)
			}
		}
		if rows[k].Runs != 4 || rows[k].Passed != 4-len(failed) || !reflect.DeepEqual(rows[k].FailedSeeds, failed) && len(failed) > 0 {
			t.Errorf("%s row %+v, want 4 runs with failed seeds %v", kind, rows[k], failed)
		}
	}
	if len(started) != 12 {
		t.Errorf("%d distinct seeds ran, want 12", len(started))
	}

	// A budget already spent: the next campaign seed starts nothing.
	clear(started)
	rows, err = Campaign(context.Background(), RunConfig{Dir: t.TempDir()}, kinds, 4, 10, time.Now().Add(-time.Second), j, 3, nil)
	if err != nil || len(started) != 0 || rows[0].Runs != 0 {
		t.Fatalf("spent budget: err %v, %d runs started, row %+v", err, len(started), rows[0])
	}
}

// TestJournalRowsAndReading: Rows counts every recorded run of the
// campaign, gaps and all, and nothing of another campaign; ReadJournal
// reads a journal a campaign is appending to without touching it (a torn
// last line is left out, and left in the file).
func TestJournalRowsAndReading(t *testing.T) {
	path := filepath.Join(t.TempDir(), "campaign.jsonl")
	j, err := OpenJournal(path, "abc123")
	if err != nil {
		t.Fatal(err)
	}
	failed := passedRun(RunSeed(7, 1, 3))
	failed.Lost = []string{"verdict 01"}
	for _, rec := range []struct {
		seed uint64
		kind Fault
		i    int
		r    *RunResult
	}{
		{7, KillLeader, 0, passedRun(RunSeed(7, 0, 0))}, {7, KillLeader, 5, passedRun(RunSeed(7, 0, 5))},
		{7, KillFollower, 3, failed}, {8, KillLeader, 0, passedRun(RunSeed(8, 0, 0))},
	} {
		if err := j.Record(rec.seed, 1, rec.kind, rec.i, rec.r); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	appendTornLine(t, path)
	before, _ := os.ReadFile(path)

	r, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rows := r.Rows(7, 1, []Fault{KillLeader, KillFollower, PauseLeader})
	if rows[0].Runs != 2 || rows[0].Passed != 2 || rows[1].Runs != 1 || rows[1].Lost != 1 ||
		!reflect.DeepEqual(rows[1].FailedSeeds, []uint64{RunSeed(7, 1, 3)}) || rows[2].Runs != 0 || rows[2].Fault != PauseLeader {
		t.Fatalf("rows %+v", rows)
	}
	if err := r.Record(7, 1, PauseLeader, 0, passedRun(1)); err == nil {
		t.Fatal("a journal opened for reading recorded a run")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatalf("reading changed the file:\n%s", after)
	}
}
