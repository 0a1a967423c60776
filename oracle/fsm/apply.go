package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Applying log entries: ApplyBatch stages each entry's commands in a txn
// and applyCommand dispatches each command to its family's handler
// (register.go, challenge.go, verdict.go, epoch.go, member.go, shadow.go).

// Apply applies one log entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in order, writing all their changes
// and the last applied index in one Pebble batch. Entries at or below the
// applied index (replayed after a restart) are skipped.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	tx := &txn{f: f, b: f.db.NewBatch(), staged: map[string][]byte{}}
	defer func() { tx.b.Close() }()
	last := f.applied.Load()
	for i, l := range logs {
		if l.Index <= last {
			out[i] = &Result{Index: l.Index, Errs: []error{fmt.Errorf("%w: entry %d already applied", ErrConflict, l.Index)}}
			continue
		}
		last = l.Index
		if l.Type != raft.LogCommand {
			out[i] = &Result{Index: l.Index}
			continue
		}
		tx.index, tx.seq = l.Index, 0
		out[i] = &Result{Index: l.Index, Errs: tx.applyEntry(l.Data)}
	}
	if last == f.applied.Load() {
		return out
	}
	if !tx.indexed {
		writeSorted(tx.b, tx.staged)
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], last)
	if err := tx.b.Set(keyApplied, v[:], nil); err != nil {
		panic(fmt.Sprintf("fsm: write applied index: %v", err))
	}
	if err := tx.b.Commit(pebble.NoSync); err != nil {
		// The replica cannot continue with a state that diverges from its
		// log; stopping is the only safe outcome.
		panic(fmt.Sprintf("fsm: commit state at index %d: %v", last, err))
	}
	f.applied.Store(last)
	f.open.apply(tx.opens)
	f.list.commit()
	if tx.note.ScoreChanges != nil || tx.note.Issued != nil || tx.note.EpochClosed != 0 {
		tx.note.Index = last
		f.publish(tx.note)
	}
	return out
}

// applyEntry decodes one entry and applies its command(s).
func (t *txn) applyEntry(data []byte) []error {
	var cmd truegpuv1.Command
	if err := proto.Unmarshal(data, &cmd); err != nil {
		return []error{fmt.Errorf("%w: decode envelope: %v", ErrInvalidCommand, err)}
	}
	if b := cmd.GetBatch(); b != nil && cmd.Version == CommandVersion {
		errs := make([]error, len(b.Commands))
		for i, c := range b.Commands {
			if c.GetBatch() != nil {
				errs[i] = fmt.Errorf("%w: nested batch", ErrInvalidCommand)
				continue
			}
			if c.LeaderTimeUnixMs == 0 {
				c.LeaderTimeUnixMs = cmd.LeaderTimeUnixMs // the batch's time
			}
			errs[i] = t.applyCommand(c)
		}
		return errs
	}
	return []error{t.applyCommand(&cmd)}
}

// applyCommand applies one (non-batch) command atomically.
func (t *txn) applyCommand(c *truegpuv1.Command) error {
	if c.Version != CommandVersion {
		return fmt.Errorf("%w: version %d, this member applies %d", ErrUnsupportedVersion, c.Version, CommandVersion)
	}
	t.at = c.LeaderTimeUnixMs
	t.overlay = map[string][]byte{}
	t.pending = Notification{}
	t.pendingOpen = t.pendingOpen[:0]
	var err error
	switch body := c.Body.(type) {
	case *truegpuv1.Command_RegisterNode:
		err = t.registerNode(body.RegisterNode)
	case *truegpuv1.Command_IssueChallenges:
		err = t.issueChallenges(body.IssueChallenges)
	case *truegpuv1.Command_RecordCommitment:
		err = t.recordCommitment(body.RecordCommitment)
	case *truegpuv1.Command_RecordWalk:
		err = t.recordWalk(body.RecordWalk)
	case *truegpuv1.Command_RecordVerdicts:
		err = t.recordVerdicts(body.RecordVerdicts)
	case *truegpuv1.Command_ExpireChallenges:
		err = t.expireChallenges(body.ExpireChallenges)
	case *truegpuv1.Command_CloseEpoch:
		err = t.closeEpoch(body.CloseEpoch)
	case *truegpuv1.Command_AddReportSignature:
		err = t.addReportSignature(body.AddReportSignature)
	case *truegpuv1.Command_SetMember:
		err = t.setMember(body.SetMember)
	case *truegpuv1.Command_RemoveMember:
		err = t.removeMember(body.RemoveMember)
	case *truegpuv1.Command_SetShadowMode:
		err = t.setShadowMode(body.SetShadowMode)
	case *truegpuv1.Command_Batch:
		err = fmt.Errorf("%w: nested batch", ErrInvalidCommand)
	default:
		if c.IgnoreIfUnknown {
			return nil
		}
		return fmt.Errorf("%w (unknown fields %d bytes); upgrade this member", ErrUnknownCommand, len(c.ProtoReflect().GetUnknown()))
	}
	if err != nil {
		return err
	}
	if err := t.indexNodes(); err != nil { // list.go
		return err
	}
	for k, v := range t.overlay {
		t.staged[k] = v
		t.f.cache.staged(k, v)
	}
	if t.indexed {
		writeSorted(t.b, t.overlay)
	}
	t.opens = append(t.opens, t.pendingOpen...)
	t.note.ScoreChanges = append(t.note.ScoreChanges, t.pending.ScoreChanges...)
	t.note.Issued = append(t.note.Issued, t.pending.Issued...)
	if t.pending.EpochClosed != 0 {
		t.note.EpochClosed = t.pending.EpochClosed
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCommand, fmt.Sprintf(format, args...))
}

// Encode marshals a command deterministically for proposing.
func Encode(c *truegpuv1.Command) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(c)
}
