package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestCodecRoundTrip(t *testing.T) {
	cases := []raft.Log{
		{},
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")},
		{Index: math.MaxUint64, Term: math.MaxUint64, Type: raft.LogType(255), Data: bytes.Repeat([]byte{7}, 300), Extensions: []byte("ext")},
		{Index: 5, Term: 2, Type: raft.LogConfiguration, AppendedAt: time.Date(2026, 11, 24, 22, 0, 0, 999999999, time.UTC)},
		{Index: 6, AppendedAt: time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC)},
		{Index: 7, AppendedAt: time.Unix(0, 0)}, // the epoch is not the zero time
	}
	for _, in := range cases {
		enc := appendLog(nil, &in)
		if len(enc) != encodedLen(&in) {
			t.Fatalf("encodedLen = %d, encoding is %d bytes", encodedLen(&in), len(enc))
		}
		var out raft.Log
		if err := decodeLog(enc, &out); err != nil {
			t.Fatalf("decode(encode(%+v)): %v", in, err)
		}
		if out.Index != in.Index || out.Term != in.Term || out.Type != in.Type ||
			!bytes.Equal(out.Data, in.Data) || !bytes.Equal(out.Extensions, in.Extensions) ||
			!out.AppendedAt.Equal(in.AppendedAt) || out.AppendedAt.IsZero() != in.AppendedAt.IsZero() {
			t.Fatalf("round trip: got %+v, want %+v", out, in)
		}
	}
}

// TestCodecGolden pins the version-1 layout: changing it breaks every log
// already on disk, so it needs a new format version instead.
func TestCodecGolden(t *testing.T) {
	l := raft.Log{Index: 0x0102, Term: 3, Type: raft.LogNoop, Data: []byte("d"), Extensions: []byte("ee"),
		AppendedAt: time.Unix(4, 5)}
	want := []byte{
		1, 1, // version, flags
		0, 0, 0, 0, 0, 0, 1, 2, // index
		0, 0, 0, 0, 0, 0, 0, 3, // term
		1,                      // type
		0, 0, 0, 0, 0, 0, 0, 4, // seconds
		0, 0, 0, 5, // nanoseconds
		0, 0, 0, 1, 'd',
		0, 0, 0, 2, 'e', 'e',
	}
	if got := appendLog(nil, &l); !bytes.Equal(got, want) {
		t.Fatalf("encoding = %v\nwant       %v", got, want)
	}
}

func TestCodecRejects(t *testing.T) {
	valid := appendLog(nil, &raft.Log{Index: 9, Term: 1, Data: []byte("data"), Extensions: []byte("x"), AppendedAt: time.Unix(10, 0)})
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	cases := []struct {
		name string
		in   []byte
	}{
		{"Empty", nil},
		{"HeaderOnly", valid[:headerSize]},
		{"TruncatedData", valid[:len(valid)-3]},
		{"TruncatedLength", valid[:headerSize+2]},
		{"Trailing", append(bytes.Clone(valid), 0)},
		{"Version0", mutate(func(b []byte) []byte { b[0] = 0; return b })},
		{"Version2", mutate(func(b []byte) []byte { b[0] = 2; return b })},
		{"UnknownFlag", mutate(func(b []byte) []byte { b[1] |= 0x80; return b })},
		{"TimeWithoutFlag", mutate(func(b []byte) []byte { b[1] = 0; return b })},
		{"NanosOutOfRange", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[27:], 1e9); return b })},
		{"DataLengthPastEnd", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[headerSize:], 1000); return b })},
		{"DataLengthOverLimit", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[headerSize:], MaxEntrySizeLimit+1); return b })},
		{"ExtLengthMax", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[headerSize+4+4:], math.MaxUint32); return b })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var l raft.Log
			if err := decodeLog(tc.in, &l); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeLog = %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzDecodeLog checks that the decoder never panics, and that whatever it
// accepts re-encodes to exactly the same bytes (the format is canonical).
func FuzzDecodeLog(f *testing.F) {
	f.Add(appendLog(nil, &raft.Log{}))
	f.Add(appendLog(nil, &raft.Log{Index: 1, Term: 2, Type: raft.LogCommand, Data: []byte("hello"), Extensions: []byte{0}, AppendedAt: time.Unix(1, 2)}))
	f.Add(appendLog(nil, &raft.Log{Index: math.MaxUint64, AppendedAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)}))
	f.Add([]byte{1})
	f.Add([]byte{2, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := appendLog(nil, &l); !bytes.Equal(again, b) {
			t.Fatalf("accepted input is not canonical:\n in  %x\n out %x", b, again)
		}
	})
}
