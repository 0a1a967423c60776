package prover

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestCeremonyTranscript: the keys follow from the transcript alone. A
// sealed phase-1 file that is not what the published phase-1 chain and
// beacon produce (here, sealed by a coordinator who dropped a contribution,
// or altered in transit) is caught, and phase-2 work built on it does not
// verify against the re-derived start; the transcript summary binds the
// transcript to the verifying key.
func TestCeremonyTranscript(t *testing.T) {
	c, err := NewCeremony(tinyProfile)
	if err != nil {
		t.Fatal(err)
	}
	step := func(f func(w io.Writer) error) []byte {
		t.Helper()
		var buf bytes.Buffer
		if err := f(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	init1 := step(c.Phase1Init)
	p1a := step(func(w io.Writer) error { return c.Phase1Contribute(bytes.NewReader(init1), w) })
	p1b := step(func(w io.Writer) error { return c.Phase1Contribute(bytes.NewReader(p1a), w) })
	beacon1, beacon2 := []byte("beacon 1"), []byte("beacon 2")
	commons := step(func(w io.Writer) error { return c.Phase1Seal(beacon1, w, readers(p1a, p1b)...) })

	if err := c.CheckCommons(bytes.NewReader(commons), beacon1, readers(p1a, p1b)...); err != nil {
		t.Fatalf("honest sealed phase 1: %v", err)
	}
	// Sealed without the second contribution: a valid file, but not the
	// transcript's.
	dropped := step(func(w io.Writer) error { return c.Phase1Seal(beacon1, w, readers(p1a)...) })
	flipped := bytes.Clone(commons)
	flipped[len(flipped)/2] ^= 1
	otherBeacon := step(func(w io.Writer) error { return c.Phase1Seal([]byte("chosen later"), w, readers(p1a, p1b)...) })
	for name, bad := range map[string][]byte{"dropped contribution": dropped, "flipped byte": flipped, "other beacon": otherBeacon, "truncated": commons[:len(commons)-1]} {
		if err := c.CheckCommons(bytes.NewReader(bad), beacon1, readers(p1a, p1b)...); !errors.Is(err, ErrCeremony) && !errors.Is(err, ErrKeyEncoding) {
			t.Errorf("%s sealed phase 1: CheckCommons = %v, want a ceremony error", name, err)
		}
	}

	// Phase 2 run from the tampered file: the old Seal, handed that file,
	// makes keys; the transcript refuses it, because the phase-2 chain does
	// not start from what the phase-1 transcript produces.
	init2bad := step(func(w io.Writer) error { return c.Phase2Init(bytes.NewReader(dropped), w) })
	p2bad := step(func(w io.Writer) error { return c.Phase2Contribute(bytes.NewReader(init2bad), w) })
	if _, _, err := c.Seal(bytes.NewReader(dropped), beacon2, readers(p2bad)...); err != nil {
		t.Fatalf("Seal from the tampered file: %v", err)
	}
	if _, _, _, err := c.SealTranscript(Transcript{Phase1: readers(p1a, p1b), Beacon1: beacon1, Phase2: readers(p2bad), Beacon2: beacon2}); !errors.Is(err, ErrCeremony) {
		t.Fatalf("SealTranscript over phase 2 of a tampered sealed file = %v, want ErrCeremony", err)
	}

	// The honest ceremony.
	init2 := step(func(w io.Writer) error { return c.Phase2Init(bytes.NewReader(commons), w) })
	p2a := step(func(w io.Writer) error { return c.Phase2Contribute(bytes.NewReader(init2), w) })
	transcript := func() Transcript {
		return Transcript{Phase1: readers(p1a, p1b), Beacon1: beacon1, Phase2: readers(p2a), Beacon2: beacon2}
	}
	_, vk, sum, err := c.SealTranscript(transcript())
	if err != nil {
		t.Fatal(err)
	}
	_, vkOld, err := c.Seal(bytes.NewReader(commons), beacon2, readers(p2a)...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vk.Encode(), vkOld.Encode()) {
		t.Fatal("the transcript's key differs from the key sealed from the honest file")
	}
	if err := sum.Check(vk); err != nil {
		t.Fatal(err)
	}
	got, err := c.VerifyTranscript(transcript(), vk)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(sum) || len(sum.Phase1) != 2 || len(sum.Phase2) != 1 {
		t.Fatalf("verified summary %+v, sealed %+v", got, sum)
	}
	// Another key, or another beacon, does not pass.
	_, devVK, err := UnsafeDevKeys(tinyProfile, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyTranscript(transcript(), devVK); !errors.Is(err, ErrCeremony) {
		t.Fatalf("VerifyTranscript(dev key) = %v, want ErrCeremony", err)
	}
	if err := sum.Check(devVK); !errors.Is(err, ErrCeremony) {
		t.Fatalf("summary Check(dev key) = %v, want ErrCeremony", err)
	}
	tr := transcript()
	tr.Beacon2 = []byte("beacon 2'")
	if _, err := c.VerifyTranscript(tr, vk); !errors.Is(err, ErrCeremony) {
		t.Fatalf("VerifyTranscript(other beacon) = %v, want ErrCeremony", err)
	}

	// The summary round-trips; an edited one is refused.
	js, err := sum.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTranscriptSummary(js)
	if err != nil || !back.Equal(sum) {
		t.Fatalf("summary round trip: %v", err)
	}
	edited := bytes.Replace(js, []byte(`"beacon1": "`), []byte(`"beacon1": "00`), 1)
	if _, err := ParseTranscriptSummary(edited); !errors.Is(err, ErrCeremony) {
		t.Fatalf("edited summary: %v, want ErrCeremony", err)
	}
}

func FuzzParseTranscriptSummary(f *testing.F) {
	s := &TranscriptSummary{Profile: "test/v2", Phase1: [][32]byte{{1}}, Phase2: [][32]byte{{2}, {3}}, Beacon1: []byte{4}, Beacon2: []byte{5, 6}}
	s.Digest = s.digest()
	js, _ := s.MarshalJSON()
	f.Add(js)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"profile":"x"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseTranscriptSummary(b)
		if err != nil {
			if !errors.Is(err, ErrKeyEncoding) && !errors.Is(err, ErrCeremony) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		again, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseTranscriptSummary(again)
		if err != nil || !back.Equal(s) {
			t.Fatalf("accepted summary does not round-trip: %v", err)
		}
	})
}
