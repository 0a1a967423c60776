package reputation

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

func testModel(t testing.TB) *Model {
	m, err := NewModel(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParamsValidate(t *testing.T) {
	p := DefaultParams()
	if err := p.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := p
	bad.HalfLifeMs = 0
	bad.Weights = [NumDimensions]uint32{}
	bad.RejectRateBP = 9000
	err := bad.Validate()
	if !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("err = %v, want ErrInvalidParams", err)
	}
	for _, want := range []string{"HalfLifeMs", "Weights", "RejectRateBP"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %s", err, want)
		}
	}
	if _, err := NewModel(bad); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("NewModel err = %v", err)
	}
}

func TestEventValidate(t *testing.T) {
	dev := []Device{{UUID: "GPU-1"}}
	a, b := ethcrypto.Address{1}, ethcrypto.Address{2}
	long := strings.Repeat("x", maxRefLen+1)
	tests := []struct {
		name string
		ev   Event
		ok   bool
	}{
		{"register", Event{Kind: EventRegistered, Devices: dev}, true},
		{"register no devices", Event{Kind: EventRegistered}, false},
		{"register empty uuid", Event{Kind: EventRegistered, Devices: []Device{{}}}, false},
		{"register twice", Event{Kind: EventRegistered, Devices: []Device{{UUID: "x"}, {UUID: "x"}}}, false},
		{"accept", Event{Kind: EventVerdictAccepted, Challenge: "c", ExpectedMs: 1}, true},
		{"accept no expectation", Event{Kind: EventVerdictAccepted, Challenge: "c"}, false},
		{"accept no challenge", Event{Kind: EventVerdictAccepted, ExpectedMs: 1}, false},
		{"reject", Event{Kind: EventVerdictRejected, Challenge: "c", Reason: ReasonProofInvalid}, true},
		{"reject bad reason", Event{Kind: EventVerdictRejected, Challenge: "c", Reason: "bad reason"}, false},
		{"miss", Event{Kind: EventChallengeMissed, Challenge: "c"}, true},
		{"miss long ref", Event{Kind: EventChallengeMissed, Challenge: long}, false},
		{"duplicate", Event{Kind: EventDuplicateIdentity, Identity: "i", Nodes: []ethcrypto.Address{a, b}}, true},
		{"duplicate one node", Event{Kind: EventDuplicateIdentity, Identity: "i", Nodes: []ethcrypto.Address{a}}, false},
		{"resolved", Event{Kind: EventDuplicateResolved, Identity: "i"}, true},
		{"device changed", Event{Kind: EventDeviceChanged, Device: "old", Devices: dev}, true},
		{"device changed two", Event{Kind: EventDeviceChanged, Device: "old", Devices: append(dev, dev...)}, false},
		{"unknown kind", Event{Kind: 99}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ev.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

// TestApplyDoesNotMutate checks that Apply treats its argument as a value.
func TestApplyDoesNotMutate(t *testing.T) {
	m := testModel(t)
	st, _ := m.Apply(NodeState{}, Event{Kind: EventRegistered, At: 1, Devices: []Device{{UUID: "GPU-b"}, {UUID: "GPU-a"}}})
	st, _ = m.Apply(st, Event{Kind: EventDuplicateIdentity, At: 2, Identity: "GPU-a", Nodes: []ethcrypto.Address{{2}, {1}}})
	st, _ = m.Apply(st, Event{Kind: EventChallengeMissed, At: 3, Challenge: "c"})
	before := st.clone()
	events := []Event{
		{Kind: EventVerdictAccepted, At: 4, Challenge: "c2", Device: "GPU-a", ExpectedMs: 10, ElapsedMs: 12},
		{Kind: EventDuplicateResolved, At: 5, Identity: "GPU-a"},
		{Kind: EventDeviceChanged, At: 6, Device: "GPU-a", Devices: []Device{{UUID: "GPU-c"}}},
		{Kind: EventVerdictRejected, At: 7, Challenge: "c3", Reason: ReasonProofInvalid},
	}
	for _, ev := range events {
		if _, err := m.Apply(st, ev); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, before) {
			t.Fatalf("Apply(%s) modified its input", ev.Kind)
		}
	}
}

// TestApplyDeterministic replays one event sequence twice and compares the
// encoded states byte for byte.
func TestApplyDeterministic(t *testing.T) {
	m := testModel(t)
	run := func() []byte {
		var st NodeState
		st, _ = m.Apply(st, Event{Kind: EventRegistered, At: 10, Devices: []Device{{UUID: "GPU-1"}}})
		for i := uint64(0); i < 200; i++ {
			ev := Event{Kind: EventVerdictAccepted, At: 10 + i*3_600_000, Challenge: "c", Device: "GPU-1", ExpectedMs: 100, ElapsedMs: 90 + i%30}
			switch i % 17 {
			case 3:
				ev = Event{Kind: EventChallengeMissed, At: ev.At, Challenge: "m"}
			case 11:
				ev = Event{Kind: EventVerdictRejected, At: ev.At, Challenge: "r", Reason: ReasonProofInvalid}
			}
			var err error
			if st, err = m.Apply(st, ev); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := st.MarshalBinary()
		return b
	}
	a, b := run(), run()
	if string(a) != string(b) {
		t.Fatal("same events gave different states")
	}
}

func TestPenaltyLogBounded(t *testing.T) {
	p := DefaultParams()
	p.MaxPenalties = 4
	m, err := NewModel(p)
	if err != nil {
		t.Fatal(err)
	}
	var st NodeState
	for i := range 10 {
		st, err = m.Apply(st, Event{Kind: EventChallengeMissed, At: uint64(i + 1), Challenge: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(st.Penalties) != 4 {
		t.Fatalf("len(Penalties) = %d, want 4", len(st.Penalties))
	}
	// Each miss records a liveness and a capacity penalty: the last 4
	// are those of the last two misses.
	if got := st.Penalties[0].Evidence[0]; got != "challenge:i" {
		t.Fatalf("oldest kept penalty = %s, want challenge:i", got)
	}
	if st.Missed != 10 {
		t.Fatalf("Missed = %d, want 10", st.Missed)
	}
}

func TestViewUnknown(t *testing.T) {
	v := testModel(t).View(NodeState{}, 5)
	if v.Status != StatusUnknown || v.Score != 0 {
		t.Fatalf("view of empty state = %+v", v)
	}
}

func TestStatusStrings(t *testing.T) {
	for s := StatusUnknown; s <= StatusRejected; s++ {
		back, err := ParseStatus(s.String())
		if err != nil || back != s {
			t.Fatalf("ParseStatus(%s) = %v, %v", s, back, err)
		}
	}
	if _, err := ParseStatus("great"); err == nil {
		t.Fatal("ParseStatus accepted an unknown status")
	}
}

func TestUnmarshalRejects(t *testing.T) {
	m := testModel(t)
	st, _ := m.Apply(NodeState{}, Event{Kind: EventRegistered, At: 1, Devices: []Device{{UUID: "GPU-1"}}})
	good, _ := st.MarshalBinary()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bad version", append([]byte{9}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte{}, good...), 0)},
		{"non-minimal varint", append([]byte{1, 0x81, 0x00}, good[2:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out NodeState
			if err := out.UnmarshalBinary(tc.b); !errors.Is(err, ErrInvalidState) {
				t.Fatalf("err = %v, want ErrInvalidState", err)
			}
		})
	}
}

func FuzzNodeStateUnmarshal(f *testing.F) {
	m := testModel(f)
	var st NodeState
	f.Add([]byte{})
	f.Add([]byte{stateVersion})
	for _, ev := range []Event{
		{Kind: EventRegistered, At: 1, Devices: []Device{{UUID: "GPU-1", Fingerprint: [32]byte{7}}}},
		{Kind: EventVerdictAccepted, At: 2, Challenge: "c", Device: "GPU-1", ExpectedMs: 10, ElapsedMs: 13},
		{Kind: EventDuplicateIdentity, At: 3, Identity: "GPU-1", Device: "GPU-1", Nodes: []ethcrypto.Address{{1}, {2}}},
		{Kind: EventVerdictRejected, At: 4, Challenge: "d", Device: "GPU-1", Reason: ReasonProofInvalid},
		{Kind: EventDuplicateDecided, At: 5, Identity: "GPU-1", Reason: ReasonIdentityDuplicateLost},
	} {
		st, _ = m.Apply(st, ev)
		b, _ := st.MarshalBinary()
		f.Add(b)
		f.Add(st.marshal(1))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var st NodeState
		if err := st.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrInvalidState) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if again := st.marshal(data[0]); string(again) != string(data) {
			t.Fatal("accepted bytes do not re-encode identically in their version")
		}
		// Any decodable state can be viewed and advanced.
		v := m.View(st, st.Updated+1000)
		if v.Score > MaxBP {
			t.Fatalf("score %d out of range", v.Score)
		}
		if _, err := m.Apply(st, Event{Kind: EventChallengeMissed, At: st.Updated + 1, Challenge: "x"}); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkApplyAccepted(b *testing.B) {
	m := testModel(b)
	st, _ := m.Apply(NodeState{}, Event{Kind: EventRegistered, At: 1, Devices: []Device{{UUID: "GPU-1"}}})
	ev := Event{Kind: EventVerdictAccepted, Challenge: "c", Device: "GPU-1", ExpectedMs: 100, ElapsedMs: 90}
	for i := 0; b.Loop(); i++ {
		ev.At = uint64(i+2) * 3_600_000
		st, _ = m.Apply(st, ev)
	}
}

func BenchmarkView(b *testing.B) {
	m := testModel(b)
	st, _ := m.Apply(NodeState{}, Event{Kind: EventRegistered, At: 1, Devices: []Device{{UUID: "GPU-1"}}})
	for i := range 50 {
		st, _ = m.Apply(st, Event{Kind: EventChallengeMissed, At: uint64(i + 2), Challenge: "m"})
	}
	for b.Loop() {
		_ = m.View(st, 1_000_000)
	}
}

func BenchmarkStateRoundTrip(b *testing.B) {
	m := testModel(b)
	st, _ := m.Apply(NodeState{}, Event{Kind: EventRegistered, At: 1, Devices: []Device{{UUID: "GPU-1"}}})
	for i := range 32 {
		st, _ = m.Apply(st, Event{Kind: EventChallengeMissed, At: uint64(i + 2), Challenge: "m"})
	}
	for b.Loop() {
		data, _ := st.MarshalBinary()
		var out NodeState
		if err := out.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStateVersion1 decodes a state written before identity contests: its
// conflicts read as open contests of a newcomer, and it is written back in
// the current version.
func TestStateVersion1(t *testing.T) {
	m := testModel(t)
	st, err := m.Apply(NodeState{}, Event{Kind: EventDuplicateIdentity, At: 3, Identity: "GPU-1", Nodes: []ethcrypto.Address{{1}, {2}}})
	if err != nil {
		t.Fatal(err)
	}
	v1 := st.marshal(1)
	var back NodeState
	if err := back.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	if len(back.Conflicts) != 1 || back.Conflicts[0].Outcome != ConflictOpen || back.Conflicts[0].Incumbent {
		t.Fatalf("version 1 conflict decoded as %+v", back.Conflicts)
	}
	if b, _ := back.MarshalBinary(); b[0] != stateVersion {
		t.Fatalf("re-encoded with version %d", b[0])
	}
	bad := bytes.Clone(st.marshal(2))
	bad[0] = 3
	if err := back.UnmarshalBinary(bad); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("version 3: %v", err)
	}
}
