package raftstore

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// On-disk encoding of one raft.Log (format version 1). All integers are
// big-endian; there is no padding and no trailing data.
//
//	offset  size  field
//	0       1     format version (1)
//	1       1     flags (bit 0: AppendedAt is set; other bits must be 0)
//	2       8     Index
//	10      8     Term
//	18      1     Type (raft.LogType)
//	19      8     AppendedAt, Unix seconds (int64; 0 when flag bit 0 is clear)
//	27      4     AppendedAt, nanoseconds in [0, 1e9) (0 when flag bit 0 is clear)
//	31      4     len(Data)
//	35      n     Data
//	35+n    4     len(Extensions)
//	39+n    m     Extensions
//
// AppendedAt is stored as an instant: it decodes in UTC without a monotonic
// clock reading, which is what raft needs (it only reports the age of logs).
const (
	formatV1         byte = 1
	flagAppendedAt   byte = 1 << 0
	knownFlags            = flagAppendedAt
	headerSize            = 1 + 1 + 8 + 8 + 1 + 8 + 4
	encodedOverhead       = headerSize + 4 + 4
	maxEncodedLength      = encodedOverhead + 2*MaxEntrySizeLimit
)

// encodedLen returns the size of the encoding of l.
func encodedLen(l *raft.Log) int {
	return encodedOverhead + len(l.Data) + len(l.Extensions)
}

// appendLog appends the version-1 encoding of l to dst.
func appendLog(dst []byte, l *raft.Log) []byte {
	var flags byte
	var sec int64
	var nsec uint32
	if !l.AppendedAt.IsZero() {
		flags |= flagAppendedAt
		sec = l.AppendedAt.Unix()
		nsec = uint32(l.AppendedAt.Nanosecond())
	}
	dst = append(dst, formatV1, flags)
	dst = binary.BigEndian.AppendUint64(dst, l.Index)
	dst = binary.BigEndian.AppendUint64(dst, l.Term)
	dst = append(dst, byte(l.Type))
	dst = binary.BigEndian.AppendUint64(dst, uint64(sec))
	dst = binary.BigEndian.AppendUint32(dst, nsec)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	return dst
}

// decodeLog decodes a version-1 encoding into l. It rejects unknown
// versions and flags, truncated input, lengths above MaxEntrySizeLimit and
// trailing bytes; every failure wraps ErrCorrupt. Data and Extensions are
// copied, so b may be reused after the call. Empty Data or Extensions
// decode as nil.
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) > maxEncodedLength {
		return fmt.Errorf("%w: encoded entry is %d bytes, above the %d byte limit", ErrCorrupt, len(b), maxEncodedLength)
	}
	if len(b) < headerSize {
		return fmt.Errorf("%w: entry is %d bytes, shorter than the %d byte header", ErrCorrupt, len(b), headerSize)
	}
	if b[0] != formatV1 {
		return fmt.Errorf("%w: unknown format version %d (this build reads version %d)", ErrCorrupt, b[0], formatV1)
	}
	flags := b[1]
	if flags&^knownFlags != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags&^knownFlags)
	}
	index := binary.BigEndian.Uint64(b[2:])
	term := binary.BigEndian.Uint64(b[10:])
	typ := raft.LogType(b[18])
	sec := int64(binary.BigEndian.Uint64(b[19:]))
	nsec := binary.BigEndian.Uint32(b[27:])
	var appendedAt time.Time
	if flags&flagAppendedAt != 0 {
		if nsec >= 1e9 {
			return fmt.Errorf("%w: appended_at nanoseconds %d out of range", ErrCorrupt, nsec)
		}
		appendedAt = time.Unix(sec, int64(nsec)).UTC()
		if appendedAt.IsZero() || appendedAt.Unix() != sec {
			// The zero time is encoded without the flag; seconds beyond
			// time.Time's range would not read back as written.
			return fmt.Errorf("%w: appended_at seconds %d out of range", ErrCorrupt, sec)
		}
	} else if sec != 0 || nsec != 0 {
		return fmt.Errorf("%w: appended_at present without its flag", ErrCorrupt)
	}
	rest := b[headerSize:]
	data, rest, err := readField(rest, "data")
	if err != nil {
		return err
	}
	ext, rest, err := readField(rest, "extensions")
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after the entry", ErrCorrupt, len(rest))
	}
	*l = raft.Log{
		Index:      index,
		Term:       term,
		Type:       typ,
		Data:       data,
		Extensions: ext,
		AppendedAt: appendedAt,
	}
	return nil
}

// readField reads a 4-byte length prefix and that many bytes, copied.
func readField(b []byte, name string) (field, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated before the %s length", ErrCorrupt, name)
	}
	n := uint64(binary.BigEndian.Uint32(b))
	b = b[4:]
	if n > MaxEntrySizeLimit {
		return nil, nil, fmt.Errorf("%w: %s length %d above the %d byte limit", ErrCorrupt, name, n, MaxEntrySizeLimit)
	}
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: %s length %d but only %d bytes remain", ErrCorrupt, name, n, len(b))
	}
	if n == 0 {
		return nil, b, nil
	}
	field = make([]byte, n)
	copy(field, b[:n])
	return field, b[n:], nil
}
