package chaos

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// A Journal records each finished run of a campaign, one JSON line per
// run, so that a long campaign stopped by its time budget, an interrupt or
// the end of a working session goes on where it stopped: a run the journal
// holds is not run again, and its row counts in the table. Each line names
// the build of oracled it ran against, so a table made of several sittings
// says which builds it covers.
type Journal struct {
	path    string
	f       *os.File
	entries map[journalKey]JournalEntry
	build   string
}

type journalKey struct {
	campaign uint64
	episodes int
	fault    Fault
	index    int
}

// JournalEntry is one finished run.
type JournalEntry struct {
	// Campaign is the campaign seed and Episodes the faults per run: runs
	// of another campaign in the same file are not counted.
	Campaign uint64 `json:"campaign"`
	Episodes int    `json:"episodes"`
	Fault    Fault  `json:"fault"`
	// Index is the run's number within its kind; Seed is RunSeed of it.
	Index int    `json:"index"`
	Seed  uint64 `json:"seed"`
	// Build is the oracled binary's VCS revision ("+modified" when built
	// from a tree with uncommitted changes).
	Build      string    `json:"build"`
	Finished   time.Time `json:"finished"`
	DurationMs int64     `json:"duration_ms"`
	// Row is this run's contribution to its kind's row.
	Row Row `json:"row"`
}

// maxJournalLine bounds one line of a journal file.
const maxJournalLine = 1 << 20

// ParseJournalEntry decodes one line of a journal file.
func ParseJournalEntry(line []byte) (JournalEntry, error) {
	var e JournalEntry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return JournalEntry{}, errors.New("not a journal entry (a JSON object with the fields the chaos command writes)")
	}
	if dec.More() {
		return JournalEntry{}, errors.New("more than one value on the line")
	}
	if _, err := ParseFault(string(e.Fault)); err != nil {
		return JournalEntry{}, fmt.Errorf("unknown fault kind %q", e.Fault)
	}
	r := e.Row
	if e.Episodes < 1 || e.Index < 0 || r.Fault != e.Fault || r.Runs != 1 || r.Passed < 0 || r.Passed > 1 ||
		min(r.Ops, r.Acked, r.Lost, r.LinViolations, r.StaleViolations, r.LinUndecided, r.ForcedStops, r.Diverged, r.NoReports, r.Panics, r.Harness, r.FaultChecks) < 0 ||
		(r.Passed == 1) != (len(r.FailedSeeds) == 0) || (r.Passed == 0 && !slices.Equal(r.FailedSeeds, []uint64{e.Seed})) {
		return JournalEntry{}, errors.New("the entry's counts are not those of one run")
	}
	return e, nil
}

// OpenJournal opens the journal at path, creating it if it does not
// exist, and reads the runs it holds. build names the oracled binary the
// runs to come use (OracledBuild). A last line cut short (the process
// killed while writing it) is dropped; any other line that does not parse
// is an error naming it.
func OpenJournal(path, build string) (*Journal, error) { return openJournal(path, build, true) }

// ReadJournal reads the journal at path without changing it (a campaign
// may be appending to it): a cut-short last line is left out, not
// dropped from the file. Its Record fails.
func ReadJournal(path string) (*Journal, error) { return openJournal(path, "", false) }

func openJournal(path, build string, write bool) (*Journal, error) {
	flags := os.O_RDONLY
	if write {
		flags = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: open the journal: %w", err)
	}
	j := &Journal{path: path, f: f, entries: map[journalKey]JournalEntry{}, build: build}
	r := bufio.NewReader(f)
	var good int64
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(bytes.TrimSpace(line)) > 0 && write {
				// A torn last line: drop it so the next entry starts clean.
				if err := f.Truncate(good); err != nil {
					f.Close()
					return nil, fmt.Errorf("chaos: journal %s: drop its cut-short last line: %w", path, err)
				}
			}
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("chaos: read the journal %s: %w", path, err)
		}
		if len(line) > maxJournalLine {
			f.Close()
			return nil, fmt.Errorf("chaos: journal %s line %d: longer than %d bytes", path, n, maxJournalLine)
		}
		good += int64(len(line))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		e, err := ParseJournalEntry(line)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("chaos: journal %s line %d: %v", path, n, err)
		}
		j.entries[journalKey{e.Campaign, e.Episodes, e.Fault, e.Index}] = e
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// Done returns the recorded row of run i of kind in the campaign with
// this seed and episodes per run, if the journal holds it.
func (j *Journal) Done(seed uint64, episodes int, kind Fault, i int) (Row, bool) {
	e, ok := j.entries[journalKey{seed, episodes, kind, i}]
	return e.Row, ok
}

// Record appends run i of kind and syncs the file.
func (j *Journal) Record(seed uint64, episodes int, kind Fault, i int, r *RunResult) error {
	row := Row{Fault: kind}
	row.add(r)
	e := JournalEntry{Campaign: seed, Episodes: episodes, Fault: kind, Index: i, Seed: r.Seed, Build: j.build,
		Finished: time.Now().UTC().Truncate(time.Second), DurationMs: r.Duration.Milliseconds(), Row: row}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("chaos: write the journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("chaos: sync the journal %s: %w", j.path, err)
	}
	j.entries[journalKey{seed, episodes, kind, i}] = e
	return nil
}

// Builds returns, for the campaign with this seed and episodes per run,
// how many recorded runs each oracled build ran, as "build: runs" sorted
// by build.
func (j *Journal) Builds(seed uint64, episodes int) []string {
	n := map[string]int{}
	for k, e := range j.entries {
		if k.campaign == seed && k.episodes == episodes {
			n[e.Build]++
		}
	}
	var out []string
	for b, c := range n {
		out = append(out, fmt.Sprintf("%s: %d", b, c))
	}
	slices.Sort(out)
	return out
}

// Rows returns, for the campaign with this seed and episodes per run, one
// table row per kind of kinds from every run the journal holds of it,
// whichever runs are still missing; failed seeds come out sorted.
func (j *Journal) Rows(seed uint64, episodes int, kinds []Fault) []Row {
	rows := make([]Row, len(kinds))
	at := map[Fault]int{}
	for k, kind := range kinds {
		rows[k].Fault = kind
		at[kind] = k
	}
	for key, e := range j.entries {
		if k, ok := at[key.fault]; ok && key.campaign == seed && key.episodes == episodes {
			rows[k].merge(e.Row)
		}
	}
	for k := range rows {
		slices.Sort(rows[k].FailedSeeds)
	}
	return rows
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// OracledBuild names the build of the oracled binary at path: its VCS
// revision, with "+modified" when the tree had uncommitted changes, or
// "unknown" when the binary carries none.
func OracledBuild(path string) string {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	rev, modified, planted := "", false, false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		case "-tags":
			planted = slices.Contains(strings.Split(s.Value, ","), "chaosplant")
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	rev = rev[:min(12, len(rev))]
	if modified {
		rev += "+modified"
	}
	if planted {
		rev += "+chaosplant"
	}
	return rev
}

// merge adds o's counts to row.
func (row *Row) merge(o Row) {
	row.Runs += o.Runs
	row.Passed += o.Passed
	row.Ops += o.Ops
	row.Acked += o.Acked
	row.Lost += o.Lost
	row.LinViolations += o.LinViolations
	row.StaleViolations += o.StaleViolations
	row.LinUndecided += o.LinUndecided
	row.ForcedStops += o.ForcedStops
	row.Diverged += o.Diverged
	row.NoReports += o.NoReports
	row.Panics += o.Panics
	row.Harness += o.Harness
	row.FaultChecks += o.FaultChecks
	row.FailedSeeds = append(row.FailedSeeds, o.FailedSeeds...)
}
