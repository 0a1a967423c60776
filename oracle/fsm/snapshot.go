package fsm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// Snapshot stream format (version 1):
//
//	magic "TGFSMSNP" | uint32be version
//	records: uvarint len(key) | key | uvarint len(value) | value   (len(key) ≥ 1)
//	end:     uvarint 0 | uint64be record count | sha256 of everything before
//
// Records are in key order. Restore checks the checksum and the order
// before it replaces anything.
const (
	snapshotMagic   = "TGFSMSNP"
	snapshotVersion = 1
	maxKeyLen       = 4 << 10
	maxValueLen     = 64 << 20
)

// Snapshot captures the state at the current applied index. The returned
// snapshot streams a Pebble snapshot, so Apply may continue meanwhile. It
// first syncs the state's write-ahead log: Raft compacts its log up to this
// index once the snapshot persists, so the state behind it must be durable.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.db.LogData(nil, pebble.Sync); err != nil {
		return nil, fmt.Errorf("fsm: sync state before snapshot: %w", err)
	}
	return &snapshot{snap: f.db.NewSnapshot()}, nil
}

type snapshot struct{ snap *pebble.Snapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(s.snap, sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() { s.snap.Close() }

type reader interface {
	NewIter(*pebble.IterOptions) (*pebble.Iterator, error)
}

func writeSnapshot(r reader, w io.Writer) error {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<16)
	var hdr [12]byte
	copy(hdr[:], snapshotMagic)
	binary.BigEndian.PutUint32(hdr[8:], snapshotVersion)
	bw.Write(hdr[:])
	var count uint64
	err := each(r, nil, func(k, v []byte) error {
		writeRecord(bw, k, v)
		count++
		return nil
	})
	if err != nil {
		return fmt.Errorf("fsm: snapshot: %w", err)
	}
	var end [9]byte
	binary.BigEndian.PutUint64(end[1:], count)
	bw.Write(end[:])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("fsm: snapshot: %w", err)
	}
	_, err = w.Write(h.Sum(nil))
	return err
}

func writeRecord(w io.Writer, k, v []byte) {
	var b [binary.MaxVarintLen64]byte
	w.Write(b[:binary.PutUvarint(b[:], uint64(len(k)))])
	w.Write(k)
	w.Write(b[:binary.PutUvarint(b[:], uint64(len(v)))])
	w.Write(v)
}

// each visits r's keys within opts (nil: all keys) in order, stopping at
// fn's first error.
func each(r reader, opts *pebble.IterOptions, fn func(k, v []byte) error) error {
	it, err := r.NewIter(opts)
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// hashingReader feeds everything read through h.
type hashingReader struct {
	r *bufio.Reader
	h hash.Hash
}

func (hr *hashingReader) ReadByte() (byte, error) {
	b, err := hr.r.ReadByte()
	if err == nil {
		hr.h.Write([]byte{b})
	}
	return b, err
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(hr.r, p)
	hr.h.Write(p[:n])
	return n, err
}

// Restore replaces the whole state with the snapshot in rc, atomically and
// in bounded memory: the stream is decoded and checked in full into sorted
// table files beside the state (a new table every restoreTableBytes), and
// only then are they ingested in one step that also excises every existing
// key. A stream that fails any check leaves the state as it was.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp, err := os.MkdirTemp(f.dir, "restore-")
	if err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	if RestoreHold != nil {
		RestoreHold(RestoreStarted)
	}
	var (
		paths []string
		w     *sstable.Writer
		size  int
	)
	closeTable := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		w = nil
		return err
	}
	defer closeTable()
	want := f.cfg.replicated()
	applied, err := decodeSnapshot(rc, func(k, v []byte) error {
		if w == nil || size >= restoreTableBytes {
			if err := closeTable(); err != nil {
				return err
			}
			path := filepath.Join(tmp, fmt.Sprintf("%06d.sst", len(paths)))
			file, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
			if err != nil {
				return err
			}
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(file), f.opts.MakeWriterOptions(len(f.opts.Levels)-1, f.db.TableFormat()))
			paths = append(paths, path)
			size = 0
		}
		if bytes.Equal(k, keyConfig) && !bytes.Equal(v, want) {
			return fmt.Errorf("%w (%s): this member cannot apply the cluster's log", ErrConfigMismatch, configDiff(v, want))
		}
		size += len(k) + len(v)
		return w.Set(k, v)
	})
	if err != nil {
		return err
	}
	if err := closeTable(); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if RestoreHold != nil {
		RestoreHold(RestoreTablesWritten)
	}
	everything := pebble.KeyRange{Start: []byte{0}, End: []byte{0xff}}
	if len(paths) == 0 {
		// An empty snapshot: delete everything.
		b := f.db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange(everything.Start, everything.End, nil); err != nil {
			return err
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("fsm: restore: %w", err)
		}
	} else if _, err := f.db.IngestAndExcise(context.Background(), paths, nil, nil, everything); err != nil {
		return fmt.Errorf("fsm: restore: ingest: %w", err)
	}
	f.applied.Store(applied)
	if err := f.checkConfig(); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	if err := f.loadIndexes(); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.publish(Notification{Index: applied})
	return nil
}

// RestoreStage names a point inside Restore.
type RestoreStage string

// The points at which Restore calls RestoreHold.
const (
	// RestoreStarted: the restore directory exists and holds nothing yet.
	RestoreStarted RestoreStage = "started"
	// RestoreTablesWritten: the snapshot is decoded and checked into the
	// restore directory's tables; the state is not yet replaced.
	RestoreTablesWritten RestoreStage = "tables-written"
)

// RestoreHold, when set, is called by Restore at each RestoreStage, on the
// restoring goroutine. Production code leaves it nil; oracled sets it only
// with its development flag -unsafe-restore-hold-file (which needs
// -unsafe-dev-keys), so the fault-injection campaigns (oracle/chaos) can
// kill a member at a chosen point inside a restore, which otherwise lasts
// milliseconds.
var RestoreHold func(RestoreStage)

// restoreTableBytes is the size at which Restore starts another table.
var restoreTableBytes = 64 << 20 // a variable for tests

// decodeSnapshot decodes a snapshot stream, calling set for each record,
// and returns the applied index it holds. Untrusted input fails with
// ErrBadSnapshot.
func decodeSnapshot(r io.Reader, set func(k, v []byte) error) (uint64, error) {
	bad := func(format string, args ...any) (uint64, error) {
		return 0, fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
	}
	hr := &hashingReader{r: bufio.NewReaderSize(r, 1<<16), h: sha256.New()}
	var hdr [12]byte
	if _, err := hr.Read(hdr[:]); err != nil {
		return bad("header: %v", err)
	}
	if string(hdr[:8]) != snapshotMagic {
		return bad("not a state snapshot (magic %q)", hdr[:8])
	}
	if v := binary.BigEndian.Uint32(hdr[8:]); v != snapshotVersion {
		return bad("version %d, this member reads %d", v, snapshotVersion)
	}
	var count, applied uint64
	var prev []byte
	for {
		kl, err := binary.ReadUvarint(hr)
		if err != nil {
			return bad("record %d: %v", count, err)
		}
		if kl == 0 {
			break
		}
		if kl > maxKeyLen {
			return bad("record %d: key of %d bytes", count, kl)
		}
		k := make([]byte, kl)
		if _, err := hr.Read(k); err != nil {
			return bad("record %d: key: %v", count, err)
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return bad("record %d: keys out of order", count)
		}
		if k[0] == 0xff {
			return bad("record %d: key outside the state's key space", count)
		}
		vl, err := binary.ReadUvarint(hr)
		if err != nil || vl > maxValueLen {
			return bad("record %d: value length", count)
		}
		v := make([]byte, vl)
		if _, err := hr.Read(v); err != nil {
			return bad("record %d: value: %v", count, err)
		}
		if bytes.Equal(k, keyApplied) {
			if len(v) != 8 {
				return bad("applied index of %d bytes", len(v))
			}
			applied = binary.BigEndian.Uint64(v)
		}
		if err := set(k, v); err != nil {
			return 0, err
		}
		prev = k
		count++
	}
	var cnt [8]byte
	if _, err := hr.Read(cnt[:]); err != nil {
		return bad("trailer: %v", err)
	}
	if binary.BigEndian.Uint64(cnt[:]) != count {
		return bad("trailer counts %d records, stream has %d", binary.BigEndian.Uint64(cnt[:]), count)
	}
	want := hr.h.Sum(nil)
	var sum [32]byte
	if _, err := io.ReadFull(hr.r, sum[:]); err != nil {
		return bad("checksum: %v", err)
	}
	if !bytes.Equal(sum[:], want) {
		return bad("checksum mismatch")
	}
	if _, err := hr.r.ReadByte(); !errors.Is(err, io.EOF) {
		return bad("trailing bytes after checksum")
	}
	return applied, nil
}

// StateHash returns a SHA-256 over every key and value of the state, in
// key order. Replicas that applied the same entries have equal hashes.
func (f *FSM) StateHash() ([32]byte, error) {
	return f.hashState(func([]byte) bool { return true })
}

// hashState is StateHash over the keys that keep accepts.
func (f *FSM) hashState(keep func(k []byte) bool) ([32]byte, error) {
	var out [32]byte
	snap := f.db.NewSnapshot()
	defer snap.Close()
	h := sha256.New()
	err := each(snap, nil, func(k, v []byte) error {
		if keep(k) {
			writeRecord(h, k, v)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("fsm: state hash: %w", err)
	}
	h.Sum(out[:0])
	return out, nil
}

func (f *FSM) readApplied(db *pebble.DB) (uint64, error) {
	v, closer, err := db.Get(keyApplied)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("fsm: read applied index: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("fsm: applied index of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
