package chaos

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// MemberState is what the checkers need of one member's final state, read
// from its data directory after the member stopped (ReadState).
type MemberState struct {
	ID      string
	Applied uint64
	Hash    [32]byte
	// Nodes: registered node addresses (EIP-55) -> the VBIOS version of
	// the node's first device (where register clients encode values).
	Nodes map[string]string
	// Verdicts: challenge id (0x hex) -> accepted, for decided challenges
	// the checkers asked about.
	Verdicts map[string]bool
	// Signers: epoch -> signer addresses of its report's signatures.
	Signers map[uint64]map[string]bool
	// LastComplete is the newest epoch with a complete report.
	LastComplete uint64
	// MemberRows are the ids of the member table's rows, sorted.
	MemberRows []string
}

// ReadState opens the state database in a stopped member's data directory
// and reads what the checkers need; verdicts are looked up for the
// challenge ids in acks.
func ReadState(id, dataDir string, acks *Acks) (*MemberState, error) {
	f, err := fsm.Inspect(dataDir + "/state")
	if err != nil {
		return nil, fmt.Errorf("chaos: state of %s: %w", id, err)
	}
	defer f.Close()
	st := &MemberState{ID: id, Applied: f.AppliedIndex(), Nodes: map[string]string{}, Verdicts: map[string]bool{}, Signers: map[uint64]map[string]bool{}}
	if st.Hash, err = f.StateHash(); err != nil {
		return nil, fmt.Errorf("chaos: state hash of %s: %w", id, err)
	}
	err = f.Nodes(func(r *truegpuv1.NodeRecord) bool {
		var a ethcrypto.Address
		copy(a[:], r.Address)
		enc := ""
		if len(r.Devices) > 0 {
			enc = r.Devices[0].GetFingerprint().GetVbiosVersion()
		}
		st.Nodes[a.String()] = enc
		return true
	})
	if err != nil {
		return nil, err
	}
	acks.mu.Lock()
	ids := make([]string, 0, len(acks.Verdicts))
	for id := range acks.Verdicts {
		ids = append(ids, id)
	}
	acks.mu.Unlock()
	for _, cid := range ids {
		raw, err := truegpuv1.ParseChallengeID(cid)
		if err != nil {
			continue
		}
		cs, err := f.Challenge(raw)
		if err != nil || cs.Verdict == nil {
			continue
		}
		st.Verdicts[cid] = cs.Verdict.Accepted
	}
	rows, err := f.Members()
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		st.MemberRows = append(st.MemberRows, r.Id)
	}
	sort.Strings(st.MemberRows)
	meta, err := f.Meta()
	if err != nil {
		return nil, err
	}
	st.LastComplete = meta.LastCompleteEpoch
	for e := uint64(0); e <= meta.CurrentEpoch; e++ {
		es, err := f.Epoch(e)
		if err != nil {
			continue
		}
		s := map[string]bool{}
		for _, sig := range es.GetReport().GetSignatures() {
			s[sig.SignerAddress] = true
		}
		st.Signers[e] = s
	}
	return st, nil
}

// CheckAcknowledged returns one line per acknowledged item that a member's
// final state lacks: a registration whose node is unknown, a verdict that
// is missing or decided the other way, a report signature that is gone.
func CheckAcknowledged(acks *Acks, states []*MemberState) []string {
	acks.mu.Lock()
	defer acks.mu.Unlock()
	var lost []string
	for _, st := range states {
		for addr := range acks.Registrations {
			if _, ok := st.Nodes[addr]; !ok {
				lost = append(lost, fmt.Sprintf("%s: acknowledged registration of %s is missing", st.ID, addr))
			}
		}
		for id, accepted := range acks.Verdicts {
			got, ok := st.Verdicts[id]
			switch {
			case !ok:
				lost = append(lost, fmt.Sprintf("%s: acknowledged verdict of challenge %s is missing", st.ID, id))
			case got != accepted:
				lost = append(lost, fmt.Sprintf("%s: challenge %s acknowledged accepted=%v, state says %v", st.ID, id, accepted, got))
			}
		}
		for epoch, signers := range acks.Signatures {
			for s := range signers {
				if !st.Signers[epoch][s] {
					lost = append(lost, fmt.Sprintf("%s: signature of %s on epoch %d's report was served, now missing", st.ID, s, epoch))
				}
			}
		}
	}
	sort.Strings(lost)
	return lost
}

// FinalReads returns, for each member state and each register node (keys
// are the nodes' addresses by key), a linearizable read at time at of the
// value the state holds. Appended to the history, they make the
// linearizability check cover the final state: a lost acknowledged write
// leaves an older value there, which no linearization allows.
func FinalReads(states []*MemberState, keys []string, at int64) []Op {
	var ops []Op
	for i, st := range states {
		for k, addr := range keys {
			v := 0
			if enc, ok := st.Nodes[addr]; ok {
				var parsed bool
				if v, parsed = parseRegisterValue(k, enc); !parsed {
					v = -1 // not a value any write produced
				}
			}
			ops = append(ops, Op{Client: 1_000_000 + i, Kind: OpReadLinear, Key: k, Value: v, Member: i, Outcome: OK, Call: at, Return: at})
		}
	}
	return ops
}

// CheckMemberTable returns one line per member state whose member table
// does not hold exactly the rows of members (the ids of the cluster's
// members at the end): a removed member's row that stayed, or a member
// that never published its row.
func CheckMemberTable(states []*MemberState, members []string) []string {
	want := append([]string(nil), members...)
	sort.Strings(want)
	var bad []string
	for _, st := range states {
		if strings.Join(st.MemberRows, ",") != strings.Join(want, ",") {
			bad = append(bad, fmt.Sprintf("%s: member table %v, cluster members %v", st.ID, st.MemberRows, want))
		}
	}
	return bad
}

// CheckConverged requires every member at the same applied index with the
// same state hash.
func CheckConverged(states []*MemberState) error {
	if len(states) == 0 {
		return fmt.Errorf("chaos: no member states")
	}
	var b strings.Builder
	for _, st := range states[1:] {
		if st.Applied != states[0].Applied {
			fmt.Fprintf(&b, "; %s applied %d, %s applied %d", states[0].ID, states[0].Applied, st.ID, st.Applied)
		} else if st.Hash != states[0].Hash {
			fmt.Fprintf(&b, "; %s and %s differ at index %d: %x vs %x", states[0].ID, st.ID, st.Applied, states[0].Hash[:8], st.Hash[:8])
		}
	}
	if b.Len() > 0 {
		return fmt.Errorf("chaos: members diverge%s", b.String())
	}
	return nil
}

// regInput is the input of one operation of the register model.
type regInput struct {
	write bool
	key   int
	value int
}

// registerModel is a register per node: a write sets the node's value, a
// read returns the last value written (0 before any write).
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		var keys []int
		for _, op := range h {
			k := op.Input.(regInput).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		sort.Ints(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() interface{} { return 0 },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(int) == state.(int), state
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write(node %d, %d)", in.key, in.value)
		}
		return fmt.Sprintf("read(node %d) -> %d", in.key, output)
	},
}

// LinearizabilityResult is the verdict of CheckLinearizable.
type LinearizabilityResult struct {
	// Ops is the number of operations checked.
	Ops int
	// Result is porcupine's answer: Ok, Illegal, or Unknown (timed out).
	Result porcupine.CheckResult
}

// CheckLinearizable checks the writes and linearizable reads of h against
// a register per node. Refused writes are left out; a write whose outcome
// is indeterminate may take effect at any time after its call; failed
// reads are left out. Stale reads are not part of it (CheckStaleReads).
// When the history is not linearizable and visualize is not empty,
// porcupine's visualization of it is written there (HTML).
func CheckLinearizable(ops []Op, timeout time.Duration, visualize string) LinearizabilityResult {
	// Values are unique per write. An indeterminate write no checked read
	// returned is left out: it may never have taken effect, and no
	// linearization needs it (one that has it take effect drops it and
	// stays one; one without it takes it last, after every other
	// operation, since it never returned). Without this, a run whose
	// faults leave dozens of writes indeterminate, each open until the end
	// of time, can take porcupine past its time limit.
	observed := map[[2]int]bool{}
	for _, op := range ops {
		if op.Kind == OpReadLinear && op.Outcome == OK {
			observed[[2]int{op.Key, op.Value}] = true
		}
	}
	var h []porcupine.Operation
	for _, op := range ops {
		switch {
		case op.Kind == OpWrite && op.Outcome == Indeterminate && !observed[[2]int{op.Key, op.Value}]:
		case op.Kind == OpWrite && op.Outcome != Failed:
			ret := op.Return
			if op.Outcome == Indeterminate {
				ret = math.MaxInt64
			}
			h = append(h, porcupine.Operation{ClientId: op.Client, Input: regInput{write: true, key: op.Key, value: op.Value}, Call: op.Call, Output: 0, Return: ret})
		case op.Kind == OpReadLinear && op.Outcome == OK:
			h = append(h, porcupine.Operation{ClientId: op.Client, Input: regInput{key: op.Key}, Call: op.Call, Output: op.Value, Return: op.Return})
		}
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, h, timeout)
	if res == porcupine.Illegal && visualize != "" {
		porcupine.VisualizePath(registerModel, info, visualize)
	}
	return LinearizabilityResult{Ops: len(h), Result: res}
}

// CheckStaleReads returns one line per stale read that returned a value
// no write of that node could have produced by then: a value never
// written, or written by a call that began after the read returned.
func CheckStaleReads(ops []Op) []string {
	firstCall := map[[2]int]int64{} // (key, value) -> earliest call of a write of it
	for _, op := range ops {
		if op.Kind == OpWrite && op.Outcome != Failed {
			k := [2]int{op.Key, op.Value}
			if t, ok := firstCall[k]; !ok || op.Call < t {
				firstCall[k] = op.Call
			}
		}
	}
	var bad []string
	for _, op := range ops {
		if op.Kind != OpReadStale || op.Outcome != OK || op.Value == 0 {
			continue
		}
		t, ok := firstCall[[2]int{op.Key, op.Value}]
		if !ok || t > op.Return {
			bad = append(bad, fmt.Sprintf("stale read of node %d from member %d returned %d, which no write had produced", op.Key, op.Member, op.Value))
		}
	}
	return bad
}

// panicMarkers are log lines of a Go process that crashed or detected
// corruption.
var panicMarkers = []string{"panic:", "fatal error:", "SIGSEGV", "DATA RACE", "pebble: corruption", "checksum mismatch"}

// corruptionMarkers are the panicMarkers no fault excuses.
var corruptionMarkers = []string{"pebble: corruption", "checksum mismatch", "DATA RACE"}

// LogWindow is a stretch of a member's log written while a disk fault was
// on: a crash there whose message names the fault's error (one of Allow)
// is the fail-stop the fault should cause, not a finding. Corruption is a
// finding anywhere.
type LogWindow struct {
	Path string
	// From and To are byte offsets in the log; To < 0: to its end.
	From, To int64
	// Allow are substrings of the fault's error messages.
	Allow []string
}

// ScanLogs returns the lines of the members' logs that show a panic, a
// fatal runtime error or store corruption, prefixed with the log's path.
func ScanLogs(paths ...string) ([]string, error) {
	found, _, err := ScanLogsWindows(nil, paths...)
	return found, err
}

// ScanLogsWindows is ScanLogs that excuses, inside windows, the crash
// lines that name the fault: it returns them apart as failStops.
func ScanLogsWindows(windows []LogWindow, paths ...string) (found, failStops []string, err error) {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		var off int64
		for sc.Scan() {
			line := sc.Text()
			at := off
			off += int64(len(line)) + 1
			if !containsAny(line, panicMarkers) {
				continue
			}
			if !containsAny(line, corruptionMarkers) && excused(windows, p, at, line) {
				failStops = append(failStops, p+": "+line)
				continue
			}
			found = append(found, p+": "+line)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	return found, failStops, nil
}

func excused(windows []LogWindow, path string, at int64, line string) bool {
	for _, w := range windows {
		if w.Path == path && at >= w.From && (w.To < 0 || at < w.To) && containsAny(line, w.Allow) {
			return true
		}
	}
	return false
}

func containsAny(s string, subs []string) bool {
	for _, m := range subs {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
