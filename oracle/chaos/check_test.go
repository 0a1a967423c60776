package chaos

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/oracle/fsm"
)

func fullState(id string) *MemberState {
	return &MemberState{
		ID: id, Applied: 42, Hash: [32]byte{1},
		Nodes:    map[string]string{"0xA": "chaos-0-1", "0xB": "chaos-1-2"},
		Verdicts: map[string]bool{"0x01": true, "0x02": false},
		Signers:  map[uint64]map[string]bool{3: {"0xS1": true, "0xS2": true}},
	}
}

func plantedAcks() *Acks {
	a := NewAcks()
	a.Registered("0xA")
	a.Registered("0xB")
	a.Verdict("0x01", true)
	a.Verdict("0x02", false)
	a.Signed(3, "0xS1")
	return a
}

func TestAckCheckerPassesCompleteStates(t *testing.T) {
	if lost := CheckAcknowledged(plantedAcks(), []*MemberState{fullState("m0"), fullState("m1")}); len(lost) != 0 {
		t.Fatalf("complete states reported lost: %v", lost)
	}
}

// A member that lost an acknowledged registration, flipped a verdict and
// dropped a served signature: the checker names each.
func TestAckCheckerCatchesLostWrites(t *testing.T) {
	bad := fullState("m1")
	delete(bad.Nodes, "0xB")
	bad.Verdicts["0x01"] = false
	delete(bad.Verdicts, "0x02")
	delete(bad.Signers[3], "0xS1")
	lost := CheckAcknowledged(plantedAcks(), []*MemberState{fullState("m0"), bad})
	want := []string{"registration of 0xB", "challenge 0x01 acknowledged accepted=true", "verdict of challenge 0x02 is missing", "signature of 0xS1"}
	if len(lost) != len(want) {
		t.Fatalf("lost = %v, want %d findings", lost, len(want))
	}
	all := strings.Join(lost, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no finding mentions %q in:\n%s", w, all)
		}
	}
	for _, l := range lost {
		if !strings.HasPrefix(l, "m1: ") {
			t.Errorf("finding %q blames the wrong member", l)
		}
	}
}

// The checker reads a real state database: an empty store (a member that
// acknowledged writes and lost them, as a store without fsync would after
// a crash) lacks every acknowledged item.
func TestAckCheckerOnRealEmptyStore(t *testing.T) {
	dir := t.TempDir()
	f, err := fsm.Open(filepath.Join(dir, "state"), fsm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	acks := NewAcks()
	acks.Registered("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	acks.Verdict("0x0000019abc", true)
	st, err := ReadState("m9", dir, acks)
	if err != nil {
		t.Fatal(err)
	}
	if lost := CheckAcknowledged(acks, []*MemberState{st}); len(lost) != 2 {
		t.Fatalf("lost = %v, want the registration and the verdict", lost)
	}
}

func TestConvergenceCheckerCatchesDivergence(t *testing.T) {
	if err := CheckConverged([]*MemberState{fullState("m0"), fullState("m1"), fullState("m2")}); err != nil {
		t.Fatalf("identical states: %v", err)
	}
	diverged := fullState("m2")
	diverged.Hash = [32]byte{2}
	if err := CheckConverged([]*MemberState{fullState("m0"), fullState("m1"), diverged}); err == nil || !strings.Contains(err.Error(), "m2") {
		t.Fatalf("divergent hash at one index not caught: %v", err)
	}
	behind := fullState("m1")
	behind.Applied = 41
	if err := CheckConverged([]*MemberState{fullState("m0"), behind}); err == nil {
		t.Fatal("different applied indexes not caught")
	}
	if err := CheckConverged(nil); err == nil {
		t.Fatal("no states accepted")
	}
}

func TestLinearizabilityCheckerAcceptsLinearizableHistory(t *testing.T) {
	ops := []Op{
		{Client: 0, Kind: OpWrite, Key: 0, Value: 1, Outcome: OK, Call: 0, Return: 10},
		{Client: 1, Kind: OpReadLinear, Key: 0, Value: 1, Outcome: OK, Call: 5, Return: 15},
		{Client: 0, Kind: OpWrite, Key: 0, Value: 2, Outcome: OK, Call: 20, Return: 30},
		{Client: 1, Kind: OpReadLinear, Key: 0, Value: 2, Outcome: OK, Call: 40, Return: 50},
		// Indeterminate: may take effect any time after its call.
		{Client: 2, Kind: OpWrite, Key: 0, Value: 3, Outcome: Indeterminate, Call: 60, Return: 65},
		{Client: 1, Kind: OpReadLinear, Key: 0, Value: 2, Outcome: OK, Call: 70, Return: 80},
		{Client: 1, Kind: OpReadLinear, Key: 0, Value: 3, Outcome: OK, Call: 90, Return: 100},
		// Refused: never happened, and reading it back would be a violation.
		{Client: 0, Kind: OpWrite, Key: 1, Value: 4, Outcome: Failed, Call: 0, Return: 1},
		{Client: 1, Kind: OpReadLinear, Key: 1, Value: 0, Outcome: OK, Call: 110, Return: 120},
		// A stale read of an old value is allowed.
		{Client: 3, Kind: OpReadStale, Key: 0, Value: 1, Outcome: OK, Call: 110, Return: 120},
	}
	if r := CheckLinearizable(ops, 0, ""); r.Result != porcupine.Ok || r.Ops != 8 {
		t.Fatalf("result %s over %d operations, want Ok over 8", r.Result, r.Ops)
	}
}

// Writes left indeterminate by a fault (each may take effect any time
// after its call, until the end of the history) that no read returned are
// left out, so a history with dozens of them is decided rather than
// timing out; an indeterminate write a read did return is kept, and a
// stale linearizable read among them is still caught.
func TestLinearizabilityCheckerManyIndeterminateWrites(t *testing.T) {
	var ops []Op
	v := 0
	at := int64(0)
	for k := range 2 {
		for i := range 40 {
			v++
			ops = append(ops, Op{Client: 10 + i, Kind: OpWrite, Key: k, Value: 1000 + v, Outcome: Indeterminate, Call: at + int64(i), Return: at + 500})
		}
		for i := range 20 {
			v++
			call := at + 100 + int64(20*i)
			ops = append(ops,
				Op{Client: 0, Kind: OpWrite, Key: k, Value: v, Outcome: OK, Call: call, Return: call + 5},
				Op{Client: 1, Kind: OpReadLinear, Key: k, Value: v, Outcome: OK, Call: call + 10, Return: call + 15})
		}
		at += 1000
	}
	// One indeterminate write that a read returned, after its call.
	ops = append(ops,
		Op{Client: 2, Kind: OpWrite, Key: 1, Value: 9999, Outcome: Indeterminate, Call: 3000, Return: 3005},
		Op{Client: 1, Kind: OpReadLinear, Key: 1, Value: 9999, Outcome: OK, Call: 3010, Return: 3020})
	r := CheckLinearizable(ops, 20*time.Second, "")
	if r.Result != porcupine.Ok || r.Ops != 82 {
		t.Fatalf("result %s over %d operations, want Ok over 82 (the 80 unobserved indeterminate writes left out)", r.Result, r.Ops)
	}
	// The same read returning the indeterminate write's value before the
	// write was called: not linearizable.
	early := slices.Clone(ops)
	early[len(early)-1].Call, early[len(early)-1].Return = 2000, 2010
	if r := CheckLinearizable(early, 20*time.Second, ""); r.Result != porcupine.Illegal {
		t.Fatalf("a read of an indeterminate write before its call: result %s, want Illegal", r.Result)
	}
	// A linearizable read of key 0's first value after its second was
	// acknowledged, among the indeterminate writes.
	stale := append(slices.Clone(ops), Op{Client: 3, Kind: OpReadLinear, Key: 0, Value: 41, Outcome: OK, Call: 130, Return: 135})
	if r := CheckLinearizable(stale, 20*time.Second, ""); r.Result != porcupine.Illegal {
		t.Fatalf("a stale linearizable read among indeterminate writes: result %s, want Illegal", r.Result)
	}
}

// TestLinearizabilityCheckerDecidesRealHistory: the register history of a
// real kill-leader run on a busy machine (seed 7000054, 763 operations, 83
// writes left indeterminate by the kill) is decided, where porcupine over
// every indeterminate write ran out its minute and answered Unknown.
func TestLinearizabilityCheckerDecidesRealHistory(t *testing.T) {
	f, err := os.Open("testdata/history-kill-leader-7000054.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var ops []Op
	if err := json.NewDecoder(zr).Decode(&ops); err != nil {
		t.Fatal(err)
	}
	indeterminate := 0
	for _, op := range ops {
		if op.Kind == OpWrite && op.Outcome == Indeterminate {
			indeterminate++
		}
	}
	if len(ops) != 763 || indeterminate != 83 {
		t.Fatalf("history of %d operations with %d indeterminate writes, want 763 and 83", len(ops), indeterminate)
	}
	if r := CheckLinearizable(ops, time.Minute, ""); r.Result != porcupine.Ok {
		t.Fatalf("result %s over %d operations, want Ok", r.Result, r.Ops)
	}
}

// The planted bug: a read labelled linearizable that returns the value
// before an acknowledged write which completed before the read began (a
// read served from a lagging replica without VerifyLeader and Barrier).
func TestLinearizabilityCheckerCatchesStaleLinearizableRead(t *testing.T) {
	ops := []Op{
		{Client: 0, Kind: OpWrite, Key: 0, Value: 1, Outcome: OK, Call: 0, Return: 10},
		{Client: 0, Kind: OpWrite, Key: 0, Value: 2, Outcome: OK, Call: 20, Return: 30},
		{Client: 1, Kind: OpReadLinear, Key: 0, Value: 1, Outcome: OK, Call: 40, Return: 50},
	}
	html := filepath.Join(t.TempDir(), "lin.html")
	if r := CheckLinearizable(ops, 0, html); r.Result != porcupine.Illegal {
		t.Fatalf("stale read labelled linearizable: result %s, want Illegal", r.Result)
	}
	if _, err := os.Stat(html); err != nil {
		t.Errorf("no visualization written: %v", err)
	}
	// A read of a value that was refused.
	ops = []Op{
		{Client: 0, Kind: OpWrite, Key: 0, Value: 5, Outcome: Failed, Call: 0, Return: 10},
		{Client: 1, Kind: OpReadLinear, Key: 0, Value: 5, Outcome: OK, Call: 20, Return: 30},
	}
	if r := CheckLinearizable(ops, 0, ""); r.Result != porcupine.Illegal {
		t.Fatalf("read of a refused write: result %s, want Illegal", r.Result)
	}
	// A lost acknowledged write: read back as absent after it returned.
	ops = []Op{
		{Client: 0, Kind: OpWrite, Key: 2, Value: 6, Outcome: OK, Call: 0, Return: 10},
		{Client: 1, Kind: OpReadLinear, Key: 2, Value: 0, Outcome: OK, Call: 20, Return: 30},
	}
	if r := CheckLinearizable(ops, 0, ""); r.Result != porcupine.Illegal {
		t.Fatalf("lost write read back as absent: result %s, want Illegal", r.Result)
	}
}

// The final state joins the history as reads at the end: a member whose
// state lost the last acknowledged write fails the linearizability check.
func TestFinalReadsCatchLostWrite(t *testing.T) {
	ops := []Op{
		{Client: 0, Kind: OpWrite, Key: 0, Value: 1, Outcome: OK, Call: 0, Return: 10},
		{Client: 0, Kind: OpWrite, Key: 1, Value: 2, Outcome: OK, Call: 20, Return: 30},
		{Client: 0, Kind: OpWrite, Key: 0, Value: 3, Outcome: OK, Call: 40, Return: 50},
	}
	good := &MemberState{ID: "m0", Nodes: map[string]string{"0xA": "chaos-0-3", "0xB": "chaos-1-2"}}
	keys := []string{"0xA", "0xB"}
	if r := CheckLinearizable(append(ops, FinalReads([]*MemberState{good}, keys, 100)...), 0, ""); r.Result != porcupine.Ok {
		t.Fatalf("final state with the last writes: %s", r.Result)
	}
	lostLast := &MemberState{ID: "m1", Nodes: map[string]string{"0xA": "chaos-0-1", "0xB": "chaos-1-2"}}
	if r := CheckLinearizable(append(ops, FinalReads([]*MemberState{good, lostLast}, keys, 100)...), 0, ""); r.Result != porcupine.Illegal {
		t.Fatalf("final state that lost the last write of node 0: %s, want Illegal", r.Result)
	}
	lostNode := &MemberState{ID: "m1", Nodes: map[string]string{"0xA": "chaos-0-3"}}
	if r := CheckLinearizable(append(ops, FinalReads([]*MemberState{lostNode}, keys, 100)...), 0, ""); r.Result != porcupine.Illegal {
		t.Fatalf("final state without node 1: %s, want Illegal", r.Result)
	}
}

func TestStaleReadCheckerCatchesPhantomValues(t *testing.T) {
	ops := []Op{
		{Kind: OpWrite, Key: 0, Value: 1, Outcome: OK, Call: 0, Return: 10},
		{Kind: OpWrite, Key: 0, Value: 2, Outcome: Indeterminate, Call: 20, Return: 30},
		{Kind: OpWrite, Key: 0, Value: 3, Outcome: OK, Call: 100, Return: 110},
		{Kind: OpReadStale, Key: 0, Value: 1, Outcome: OK, Call: 40, Return: 50},
		{Kind: OpReadStale, Key: 0, Value: 2, Outcome: OK, Call: 40, Return: 50},
		{Kind: OpReadStale, Key: 0, Value: 0, Outcome: OK, Call: 40, Return: 50},
	}
	if bad := CheckStaleReads(ops); len(bad) != 0 {
		t.Fatalf("good stale reads flagged: %v", bad)
	}
	ops = append(ops,
		Op{Kind: OpReadStale, Key: 0, Value: 9, Outcome: OK, Call: 40, Return: 50},     // never written
		Op{Kind: OpReadStale, Key: 0, Value: 3, Outcome: OK, Call: 40, Return: 50},     // from the future
		Op{Kind: OpReadStale, Key: 1, Value: 1, Outcome: OK, Call: 40, Return: 50},     // another node's value
		Op{Kind: OpReadStale, Key: 0, Value: 9, Outcome: Failed, Call: 40, Return: 50}, // failed reads do not count
	)
	if bad := CheckStaleReads(ops); len(bad) != 3 {
		t.Fatalf("stale read findings %v, want 3", bad)
	}
}

func TestScanLogsCatchesPanics(t *testing.T) {
	dir := t.TempDir()
	clean := filepath.Join(dir, "m0.log")
	crashed := filepath.Join(dir, "m1.log")
	os.WriteFile(clean, []byte("time=... level=INFO msg=\"became leader\"\noracled: shutting down\n"), 0o600)
	os.WriteFile(crashed, []byte("level=INFO msg=applied\npanic: fsm: apply: pebble: closed\n\ngoroutine 1 [running]:\n"), 0o600)
	found, err := ScanLogs(clean, crashed)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || !strings.HasPrefix(found[0], crashed) {
		t.Fatalf("found %v, want the panic line of %s", found, crashed)
	}
	if _, err := ScanLogs(filepath.Join(dir, "missing.log")); err == nil {
		t.Fatal("a missing log is not an error")
	}
}

func TestOutcomeClassification(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Outcome
	}{
		{nil, OK},
		{status.Error(codes.InvalidArgument, "bad signature"), Failed},
		{status.Error(codes.ResourceExhausted, "rate limited"), Failed},
		{status.Error(codes.Unavailable, "oracle: no leader"), Failed},
		{status.Error(codes.Unavailable, "oracle: not the leader; the leader is m1 at 127.0.0.1:1"), Failed},
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), Failed},
		{status.Error(codes.Unavailable, "oracle: outcome unknown, leadership lost: oracle: not the leader"), Indeterminate},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), Indeterminate},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), Indeterminate},
		{errors.New("something else"), Indeterminate},
	} {
		if got := outcome(c.err); got != c.want {
			t.Errorf("outcome(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// A member under a disk fault crashes on purpose: inside its fault's log
// window a panic that names the fault's error is the fail-stop, kept apart;
// the same panic outside the window, a panic inside it that does not name
// the fault, and corruption anywhere are findings.
func TestScanLogsWindowsExcusesOnlyTheFailStop(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m1.log")
	before := "level=INFO msg=applied\npanic: raftstore: pebble fatal error: injected error\n"
	inside := "oracled: UNSAFE disk fault on\n" +
		"panic: raftstore: pebble fatal error: pebble: fatal commit error: injected error\n" +
		"panic: runtime error: invalid memory address or nil pointer dereference\n" +
		"level=ERROR msg=\"pebble: corruption: injected error\"\n"
	after := "panic: raftstore: pebble fatal error: injected error\n"
	os.WriteFile(path, []byte(before+inside+after), 0o600)
	w := LogWindow{Path: path, From: int64(len(before)), To: int64(len(before) + len(inside)), Allow: []string{injectedDiskError}}
	found, failStops, err := ScanLogsWindows([]LogWindow{w}, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(failStops) != 1 || !strings.Contains(failStops[0], "fatal commit error: injected error") {
		t.Fatalf("fail-stops %v, want the one panic inside the window", failStops)
	}
	if len(found) != 4 {
		t.Fatalf("found %d lines, want 4 (the panics before and after the window, the nil dereference, the corruption):\n%s", len(found), strings.Join(found, "\n"))
	}
	// An open window (To < 0) runs to the end of the log.
	w.To = -1
	if found, failStops, _ := ScanLogsWindows([]LogWindow{w}, path); len(failStops) != 2 || len(found) != 3 {
		t.Fatalf("open window: found %v, fail-stops %v", found, failStops)
	}
	// Another log's window excuses nothing here.
	w.Path = filepath.Join(dir, "m0.log")
	if found, failStops, _ := ScanLogsWindows([]LogWindow{w}, path); len(failStops) != 0 || len(found) != 5 {
		t.Fatalf("window of another log: found %v, fail-stops %v", found, failStops)
	}
}

// The planted bug: a removed member's row that stayed in the member table
// (reports would keep waiting for its signature), and a new member that
// never published its row.
func TestMemberTableCheckerCatchesStaleRows(t *testing.T) {
	good := &MemberState{ID: "m1", MemberRows: []string{"m1", "m2", "m3"}}
	if bad := CheckMemberTable([]*MemberState{good}, []string{"m3", "m1", "m2"}); len(bad) != 0 {
		t.Fatalf("matching table flagged: %v", bad)
	}
	stale := &MemberState{ID: "m2", MemberRows: []string{"m0", "m1", "m2", "m3"}}
	missing := &MemberState{ID: "m3", MemberRows: []string{"m1", "m2"}}
	bad := CheckMemberTable([]*MemberState{good, stale, missing}, []string{"m1", "m2", "m3"})
	if len(bad) != 2 || !strings.HasPrefix(bad[0], "m2:") || !strings.HasPrefix(bad[1], "m3:") {
		t.Fatalf("findings %v, want m2's stale row of m0 and m3's missing row", bad)
	}
}
