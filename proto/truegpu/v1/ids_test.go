package truegpuv1

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestChallengeIDForm(t *testing.T) {
	id := ChallengeID([]byte("nonce"), bytes.Repeat([]byte{7}, 20), 3, 1_700_000_000_000)
	s := FormatChallengeID(id[:])
	if len(s) != 66 || !strings.HasPrefix(s, "0x") || s != strings.ToLower(s) {
		t.Fatalf("API form %q: want 0x and 64 lower-case hex digits", s)
	}
	back, err := ParseChallengeID(s)
	if err != nil || !bytes.Equal(back, id[:]) {
		t.Fatalf("ParseChallengeID(%q) = %x, %v; want %x", s, back, err, id)
	}
	if up, err := ParseChallengeID("0x" + strings.ToUpper(s[2:])); err != nil || !bytes.Equal(up, id[:]) {
		t.Fatalf("upper-case digits: %x, %v", up, err)
	}
	for _, bad := range []string{"", "0x", s[2:], "0X" + s[2:], s[:65], s + "0", "0x" + strings.Repeat("g", 64), " " + s} {
		if _, err := ParseChallengeID(bad); !errors.Is(err, ErrBadChallengeID) {
			t.Errorf("ParseChallengeID(%q): err %v, want ErrBadChallengeID", bad, err)
		}
	}
}

func FuzzParseChallengeID(f *testing.F) {
	f.Add("0x" + strings.Repeat("ab", 32))
	f.Add("0x12")
	f.Add("")
	f.Add(strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseChallengeID(s)
		if err != nil {
			if !errors.Is(err, ErrBadChallengeID) {
				t.Fatalf("error class: %v", err)
			}
			return
		}
		if len(id) != 32 || !strings.EqualFold(FormatChallengeID(id), s) {
			t.Fatalf("%q parsed to %x", s, id)
		}
	})
}
