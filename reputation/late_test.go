package reputation

import "testing"

// TestLateAnswerAbsorbed: a late answer counts against capacity unless the
// node is typically on time (earlier samples, median within tolerance) and
// it is at most LateAbsorbMillis past its deadline. Honest devices hit by
// one lost packet keep their capacity; hardware slower than claimed, a
// node with no history and an answer a whole phase late do not.
func TestLateAnswerAbsorbed(t *testing.T) {
	m := testModel(t)
	onTime := func(n int) NodeState {
		st, err := m.Apply(NodeState{}, Event{Kind: EventRegistered, At: 1, Devices: []Device{{UUID: "GPU-a"}}})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if st, err = m.Apply(st, Event{Kind: EventVerdictAccepted, At: uint64(2 + i), Challenge: "ok", Device: "GPU-a", ElapsedMs: 4500, ExpectedMs: 4750}); err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	late := func(elapsed uint64) Event {
		return Event{Kind: EventVerdictRejected, At: 100, Challenge: "late", Device: "GPU-a", Reason: ReasonWalkLate,
			ElapsedMs: elapsed, ExpectedMs: 4750, DeadlineMs: 5750}
	}
	capNeg := func(st NodeState) uint64 { return st.Evidence[Capacity].Neg }
	for _, tc := range []struct {
		name     string
		history  int
		ev       Event
		absorbed bool
	}{
		{"typically on time, 800 ms late (a lost packet)", 5, late(6550), true},
		{"typically on time, at the absorb limit", 5, late(6750), true},
		{"typically on time, a whole phase late (a second identity in a storm)", 5, late(10500), false},
		{"no history", 0, late(5800), false},
		{"the answer never came", 5, Event{Kind: EventVerdictRejected, At: 100, Challenge: "late", Reason: ReasonWalkLate}, false},
		{"a late commitment, typically on time", 5, Event{Kind: EventVerdictRejected, At: 100, Challenge: "late", Reason: ReasonCommitmentLate,
			ElapsedMs: 6300, ExpectedMs: 4750, DeadlineMs: 5750}, true},
	} {
		st := onTime(tc.history)
		before := capNeg(st)
		out, err := m.Apply(st, tc.ev)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := capNeg(out) <= before
		if got != tc.absorbed {
			t.Errorf("%s: capacity negative evidence %d -> %d, absorbed %v, want %v", tc.name, before, capNeg(out), got, tc.absorbed)
		}
		if tc.absorbed && len(out.Timing) != len(st.Timing)+1 {
			t.Errorf("%s: an absorbed late answer must join the timing window (%d -> %d samples)", tc.name, len(st.Timing), len(out.Timing))
		}
		if out.Rejected != st.Rejected+1 {
			t.Errorf("%s: the rejection must still be counted", tc.name)
		}
	}

	// Hardware slower than claimed: late on every answer by a little,
	// never absorbed (its window holds no on-time samples), rejected on
	// capacity within three challenges.
	st := onTime(0)
	var err error
	for i := range 3 {
		if st, err = m.Apply(st, Event{Kind: EventVerdictRejected, At: uint64(10 + i), Challenge: "slow", Device: "GPU-a", Reason: ReasonWalkLate,
			ElapsedMs: 6600, ExpectedMs: 4750, DeadlineMs: 5750}); err != nil {
			t.Fatal(err)
		}
	}
	if v := m.View(st, 20); v.Status != StatusRejected {
		t.Fatalf("a device late by 850 ms on three of three walks: status %v, want rejected", v.Status)
	}
	// Typically slow (median above tolerance): not absorbed either.
	st = onTime(0)
	for i := range 5 {
		if st, err = m.Apply(st, Event{Kind: EventVerdictAccepted, At: uint64(2 + i), Challenge: "slowish", Device: "GPU-a", ElapsedMs: 6500, ExpectedMs: 4750}); err != nil {
			t.Fatal(err)
		}
	}
	before := capNeg(st)
	if out, err := m.Apply(st, late(6550)); err != nil || capNeg(out) <= before {
		t.Fatalf("a typically slow node's late answer was absorbed (%v)", err)
	}
}
