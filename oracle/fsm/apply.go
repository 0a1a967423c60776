package fsm

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/truegpu/truegpu/prover/timed"
	"slices"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Outcomes of a challenge, as stored and served.
const (
	OutcomePending   = "pending"
	OutcomeCommitted = "committed"
	OutcomeAccepted  = "accepted"
	OutcomeRejected  = "rejected"
	OutcomeMissed    = "missed"
)

// Key layout. Every key of the state starts with one of these prefixes;
// fixed-width integers are big-endian so keys sort numerically.
var (
	keyApplied      = []byte("\x00applied")
	keyMeta         = []byte("\x00meta")
	prefixNode      = []byte("n/") // n/<addr20> -> NodeRecord
	prefixIdentity  = []byte("i/") // i/<identity>\x00<addr20> -> ""
	prefixChallenge = []byte("c/") // c/<id32> -> ChallengeState
	prefixDeadline  = []byte("d/") // d/<be64 ms><id32> -> ""
	prefixEpoch     = []byte("e/") // e/<be64 epoch> -> EpochState
	prefixEpochVerd = []byte("v/") // v/<be64 epoch><be64 index><be32 seq> -> id32
	prefixMember    = []byte("m/") // m/<id> -> SetMemberCommand
	prefixHistory   = []byte("h/") // h/<addr20><be64 issued ms><id32> -> ""
	prefixDevCount  = []byte("k/") // k/<addr20> -> device count (uvarint)
	prefixNonce     = []byte("u/") // u/<nonce32> -> id32 of the challenge that used it
	prefixContest   = []byte("x/") // x/<identity> -> "": identities with an undecided contest
)

func key(prefix []byte, parts ...[]byte) []byte {
	k := slices.Clone(prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func be32(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b[:]
}

// txn applies the commands of a batch of log entries. Each command's writes
// are staged in an overlay and move to the batch's staged writes only if
// the command succeeds, so a failing command leaves no trace. The staged
// writes go to a Pebble batch once, in key order, when the entries are
// done (writeSorted).
//
// Point reads see the running command's overlay, then the staged writes,
// then the database, so no indexed Pebble batch is needed: indexing every
// write costs a skiplist insert, and the commonest commands (issue,
// commit, verdict) only do point reads. The few commands that scan a
// prefix switch to an indexed batch at their first scan; from then on each
// command's writes go to it as the command succeeds.
type txn struct {
	f       *FSM
	b       *pebble.Batch
	indexed bool
	index   uint64
	at      int64
	overlay map[string][]byte // nil value: deleted
	staged  map[string][]byte // writes of the applied commands of the batch; nil value: deleted
	seq     uint32
	note    Notification
	pending Notification
	// Open-set changes of the running command, and of the applied
	// commands of the batch (see openIndex).
	pendingOpen, opens []openOp
}

func (t *txn) get(k []byte) ([]byte, bool, error) {
	if v, ok := t.overlay[string(k)]; ok {
		return v, v != nil, nil
	}
	if v, ok := t.staged[string(k)]; ok {
		return v, v != nil, nil
	}
	v, closer, err := t.f.db.Get(k)
	if err == pebble.ErrNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("fsm: read state: %w", err)
	}
	out := slices.Clone(v)
	closer.Close()
	return out, true, nil
}

func (t *txn) set(k, v []byte) {
	if v == nil {
		v = []byte{}
	}
	t.overlay[string(k)] = v
}

func (t *txn) del(k []byte) { t.overlay[string(k)] = nil }

func (t *txn) getMsg(k []byte, m proto.Message) (bool, error) {
	v, ok, err := t.get(k)
	if err != nil || !ok {
		return ok, err
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("fsm: corrupt record %q: %w", k, err)
	}
	return true, nil
}

func (t *txn) putMsg(k []byte, m proto.Message) {
	v, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("fsm: encode record %q: %v", k, err))
	}
	t.set(k, v)
}

// writeSorted writes staged changes (nil: delete) to b in key order. The
// order makes the batch identical however the map iterates, and it is the
// order the memtable inserts them in: keys that follow one another (new
// challenge ids, deadlines) then each land next to the one before, where
// the skiplist's cached position finds them, instead of being searched for
// from the top.
func writeSorted(b *pebble.Batch, m map[string][]byte) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var err error
		if v := m[k]; v == nil {
			err = b.Delete([]byte(k), nil)
		} else {
			err = b.Set([]byte(k), v, nil)
		}
		if err != nil {
			panic(fmt.Sprintf("fsm: stage write: %v", err))
		}
	}
}

// scan visits the committed-batch keys with prefix (not the overlay of the
// running command); handlers scan before they write. The first scan of a
// batch moves its writes into an indexed batch, which iterates them merged
// with the database.
func (t *txn) scan(prefix []byte, fn func(k, v []byte) error) error {
	if !t.indexed {
		t.b.Close()
		t.b, t.indexed = t.f.db.NewIndexedBatch(), true
		writeSorted(t.b, t.staged)
	}
	return each(t.b, &pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)}, fn)
}

func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func (t *txn) meta() (*truegpuv1.MetaState, error) {
	m := &truegpuv1.MetaState{}
	ok, err := t.getMsg(keyMeta, m)
	if err != nil {
		return nil, err
	}
	if !ok {
		m.CurrentEpoch = 1
	}
	return m, nil
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

// FingerprintDigest is the digest of a device's stable fingerprint fields
// (those that do not change with a driver update or clock settings).
func FingerprintDigest(fp *truegpuv1.DeviceFingerprint) [32]byte {
	if fp == nil {
		return ethcrypto.Keccak256(nil)
	}
	stable := &truegpuv1.DeviceFingerprint{
		Uuid: fp.Uuid, Serial: fp.Serial, BoardPartNumber: fp.BoardPartNumber, BoardId: fp.BoardId,
		PciDeviceId: fp.PciDeviceId, PciSubsystemId: fp.PciSubsystemId, Name: fp.Name,
		MemoryTotalBytes: fp.MemoryTotalBytes, VbiosVersion: fp.VbiosVersion,
		ComputeCapabilityMajor: fp.ComputeCapabilityMajor, ComputeCapabilityMinor: fp.ComputeCapabilityMinor,
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(stable)
	return ethcrypto.Keccak256([]byte("truegpu.v1 fingerprint\x00"), b)
}

// identities returns the identity strings a device presents: its UUID and,
// when reported, its serial.
func identities(d *truegpuv1.Device) []string {
	fp := d.GetFingerprint()
	out := []string{"uuid:" + fp.GetUuid()}
	if s := fp.GetSerial(); s != "" {
		out = append(out, "serial:"+s)
	}
	return out
}

func (t *txn) node(addr []byte) (*truegpuv1.NodeRecord, error) {
	rec := &truegpuv1.NodeRecord{}
	ok, err := t.getMsg(key(prefixNode, addr), rec)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: node %s", ErrNotFound, addrString(addr))
	}
	return rec, nil
}

func addrString(a []byte) string {
	if len(a) != 20 {
		return "0x" + hex.EncodeToString(a)
	}
	return ethcrypto.Address(a).String()
}

// IDString is the API form of a challenge id.
func IDString(id []byte) string { return "0x" + hex.EncodeToString(id) }

// event applies a reputation event to rec and refreshes its view.
func (t *txn) event(rec *truegpuv1.NodeRecord, ev reputation.Event) error {
	var st reputation.NodeState
	if len(rec.Reputation) > 0 {
		if err := st.UnmarshalBinary(rec.Reputation); err != nil {
			return fmt.Errorf("fsm: node %s: %w", addrString(rec.Address), err)
		}
	}
	ev.At = uint64(max(t.at, 0))
	next, err := t.f.cfg.Model.Apply(st, ev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	enc, err := next.MarshalBinary()
	if err != nil {
		return fmt.Errorf("fsm: encode reputation: %w", err)
	}
	oldStatus, oldScore := rec.Status, rec.ScoreBp
	rec.Reputation = enc
	t.f.fillView(rec, next, ev.At)
	rec.UpdatedAtUnixMs = t.at
	if rec.Status != oldStatus || rec.ScoreBp != oldScore {
		reason := ""
		if ev.Reason != "" {
			reason = string(ev.Reason)
		}
		t.pending.ScoreChanges = append(t.pending.ScoreChanges, &truegpuv1.ScoreChange{
			Address: addrString(rec.Address), OldScoreBp: oldScore, NewScoreBp: rec.ScoreBp,
			OldStatus: oldStatus, NewStatus: rec.Status, Reason: reason, AtUnixMs: t.at, AppliedIndex: t.index,
		})
	}
	return nil
}

// fillView sets the derived fields of rec from the model's view at time at.
func (f *FSM) fillView(rec *truegpuv1.NodeRecord, st reputation.NodeState, at uint64) {
	v := f.cfg.Model.View(st, at)
	rec.Status = truegpuv1.NodeStatus(v.Status)
	rec.ScoreBp = v.Score
	ds := func(d reputation.Dimension) *truegpuv1.DimensionScore {
		return &truegpuv1.DimensionScore{ScoreBp: v.Dimensions[d].Score, ConfidenceBp: v.Dimensions[d].Confidence}
	}
	rec.Dimensions = &truegpuv1.Dimensions{
		Identity: ds(reputation.Identity), Capacity: ds(reputation.Capacity),
		Liveness: ds(reputation.Liveness), Correctness: ds(reputation.Correctness),
	}
	self := ethcrypto.Address(rec.Address).String()
	var reasons []*truegpuv1.Reason
	for _, fd := range v.Findings {
		reasons = append(reasons, &truegpuv1.Reason{Code: string(fd.Reason), Detail: reasonDetail(fd.Dimension.String(), fd.Evidence), Evidence: evidence(fd.Evidence, self, 0, 0)})
	}
	for i := len(st.Penalties) - 1; i >= 0 && len(reasons) < f.cfg.MaxReasons; i-- {
		p := st.Penalties[i]
		reasons = append(reasons, &truegpuv1.Reason{Code: string(p.Reason), Detail: reasonDetail(p.Dimension.String()+" penalty", p.Evidence), Evidence: evidence(p.Evidence, self, 0, int64(p.At))})
	}
	if len(reasons) > f.cfg.MaxReasons {
		reasons = reasons[:f.cfg.MaxReasons]
	}
	rec.Reasons = reasons
}

// reasonDetail is what a reason says beside its code: the dimension, and
// the identity or timing its evidence names, so that two reasons with one
// code (a node whose UUID and serial are both shared, say) read apart.
func reasonDetail(base string, refs []string) string {
	var extra []string
	for _, r := range refs {
		switch {
		case strings.HasPrefix(r, reputation.RefIdentity):
			extra = append(extra, "shared "+strings.TrimPrefix(r, reputation.RefIdentity))
		case strings.HasPrefix(r, reputation.RefTiming):
			extra = append(extra, "latency "+strings.TrimPrefix(r, reputation.RefTiming)+" (measured/expected)")
		}
	}
	if len(extra) == 0 {
		return base
	}
	return base + ": " + strings.Join(extra, ", ")
}

// evidence turns the model's evidence references into API evidence. self,
// the node the reason belongs to, is left out of the related addresses.
func evidence(refs []string, self string, index uint64, at int64) []*truegpuv1.Evidence {
	var out []*truegpuv1.Evidence
	var related []string
	for _, r := range refs {
		switch {
		case strings.HasPrefix(r, reputation.RefChallenge):
			out = append(out, &truegpuv1.Evidence{ChallengeId: strings.TrimPrefix(r, reputation.RefChallenge), AppliedIndex: index, AtUnixMs: at})
		case strings.HasPrefix(r, reputation.RefNode):
			if n := strings.TrimPrefix(r, reputation.RefNode); !strings.EqualFold(n, self) {
				related = append(related, n)
			}
		}
	}
	if len(related) > 0 {
		out = append(out, &truegpuv1.Evidence{RelatedAddresses: related, AppliedIndex: index, AtUnixMs: at})
	}
	return out
}

func (t *txn) registerNode(c *truegpuv1.RegisterNodeCommand) error {
	if len(c.Address) != 20 {
		return invalid("register: address must be 20 bytes, got %d", len(c.Address))
	}
	if len(c.Devices) == 0 {
		return invalid("register: no devices")
	}
	if err := checkSignedRegistration(t.f.cfg.Recover, c); err != nil {
		return err
	}
	seen := map[string]bool{}
	var devs []reputation.Device
	for i, d := range c.Devices {
		if d.GetFingerprint().GetUuid() == "" {
			return invalid("register: device %d has no UUID", i)
		}
		if d.Index != uint32(i) {
			return invalid("register: device %d has index %d; devices are listed by index from 0", i, d.Index)
		}
		for _, id := range identities(d) {
			if seen[id] {
				return invalid("register: identity %s listed twice", id)
			}
			seen[id] = true
		}
		devs = append(devs, reputation.Device{UUID: d.Fingerprint.Uuid, Fingerprint: FingerprintDigest(d.Fingerprint)})
	}
	rec := &truegpuv1.NodeRecord{}
	existed, err := t.getMsg(key(prefixNode, c.Address), rec)
	if err != nil {
		return err
	}
	meta, err := t.meta()
	if err != nil {
		return err
	}
	oldIDs := map[string]bool{}
	if existed {
		for _, d := range rec.Devices {
			for _, id := range identities(d) {
				oldIDs[id] = true
			}
		}
	} else {
		rec = &truegpuv1.NodeRecord{
			Address: c.Address, RegisteredAtUnixMs: t.at, RegisteredIndex: t.index,
			Counters: &truegpuv1.NodeCounters{},
		}
		meta.NodeCount++
		t.putMsg(keyMeta, meta)
	}
	rec.Devices = c.Devices
	if err := t.event(rec, reputation.Event{Kind: reputation.EventRegistered, Devices: devs}); err != nil {
		return err
	}
	// Identity index: find other holders of each identity before writing.
	self := ethcrypto.Address(c.Address)
	type dup struct {
		id    string
		nodes []ethcrypto.Address
	}
	// deviceOf is the UUID of the device of r that presents identity id.
	deviceOf := func(r *truegpuv1.NodeRecord, id string) string {
		for _, d := range r.Devices {
			if slices.Contains(identities(d), id) {
				return d.GetFingerprint().GetUuid()
			}
		}
		return ""
	}
	var dups []dup
	var resolved []dup
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		holders, err := t.identityHolders(id)
		if err != nil {
			return err
		}
		if !slices.Contains(holders, self) {
			holders = append(holders, self)
			slices.SortFunc(holders, func(a, b ethcrypto.Address) int { return bytes.Compare(a[:], b[:]) })
		}
		if len(holders) > 1 {
			dups = append(dups, dup{id, holders})
			// Contests are decided on evidence at epoch close
			// (decideContests), not on the newcomer's word.
			t.set(key(prefixContest, []byte(id)), nil)
		}
		t.set(key(prefixIdentity, []byte(id), []byte{0}, c.Address), nil)
	}
	var gone []string
	for id := range oldIDs {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		holders, err := t.identityHolders(id)
		if err != nil {
			return err
		}
		t.del(key(prefixIdentity, []byte(id), []byte{0}, c.Address))
		rest := slices.DeleteFunc(holders, func(a ethcrypto.Address) bool { return a == self })
		resolved = append(resolved, dup{id, rest})
		if len(rest) <= 1 {
			t.del(key(prefixContest, []byte(id)))
		}
		if err := t.event(rec, reputation.Event{Kind: reputation.EventDuplicateResolved, Identity: id}); err != nil {
			return err
		}
	}
	// Records of other nodes touched by this registration.
	others := map[ethcrypto.Address]*truegpuv1.NodeRecord{}
	other := func(a ethcrypto.Address) (*truegpuv1.NodeRecord, error) {
		if r, ok := others[a]; ok {
			return r, nil
		}
		r, err := t.node(a[:])
		if err != nil {
			return nil, err
		}
		others[a] = r
		return r, nil
	}
	for _, d := range dups {
		ev := reputation.Event{Kind: reputation.EventDuplicateIdentity, Identity: d.id, Nodes: d.nodes}
		if len(ev.Nodes) > 16 {
			ev.Nodes = ev.Nodes[:16]
		}
		for _, a := range d.nodes {
			target := rec
			if a != self {
				if target, err = other(a); err != nil {
					return err
				}
			}
			ev.Device = deviceOf(target, d.id)
			if err := t.event(target, ev); err != nil {
				return err
			}
		}
	}
	for _, d := range resolved {
		if len(d.nodes) == 1 {
			target, err := other(d.nodes[0])
			if err != nil {
				return err
			}
			if err := t.event(target, reputation.Event{Kind: reputation.EventDuplicateResolved, Identity: d.id}); err != nil {
				return err
			}
		}
	}
	for a, r := range others {
		t.putMsg(key(prefixNode, a[:]), r)
	}
	t.putMsg(key(prefixNode, c.Address), rec)
	t.set(key(prefixDevCount, c.Address), binary.AppendUvarint(nil, uint64(len(c.Devices))))
	return nil
}

func (t *txn) identityHolders(id string) ([]ethcrypto.Address, error) {
	var out []ethcrypto.Address
	p := key(prefixIdentity, []byte(id), []byte{0})
	err := t.scan(p, func(k, _ []byte) error {
		if len(k) == len(p)+20 {
			out = append(out, ethcrypto.Address(k[len(p):]))
		}
		return nil
	})
	return out, err
}

func (t *txn) challenge(id []byte) (*truegpuv1.ChallengeState, error) {
	cs := &truegpuv1.ChallengeState{}
	ok, err := t.getMsg(key(prefixChallenge, id), cs)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: challenge %s", ErrNotFound, IDString(id))
	}
	return cs, nil
}

func (t *txn) issueChallenges(c *truegpuv1.IssueChallengesCommand) error {
	if len(c.Challenges) == 0 {
		return invalid("issue: no challenges")
	}
	ids := map[string]bool{}
	for i, ch := range c.Challenges {
		if len(ch.Nonce) != 32 || len(ch.Address) != 20 {
			return invalid("issue: challenge %d: nonce must be 32 bytes and address 20", i)
		}
		want := truegpuv1.ChallengeID(ch.Nonce, ch.Address, ch.DeviceIndex, ch.IssuedAtUnixMs)
		if !bytes.Equal(ch.Id, want[:]) {
			return invalid("issue: challenge %d: id does not match (nonce, address, device, issue time)", i)
		}
		if ch.CommitDeadlineUnixMs <= ch.IssuedAtUnixMs || ch.ProofDeadlineUnixMs < ch.CommitDeadlineUnixMs {
			return invalid("issue: challenge %d: deadlines must follow issue", i)
		}
		if tp := ch.Timed; tp != nil {
			if err := (timed.Spec{M: tp.M, N: tp.N, K: tp.K}).Validate(); err != nil {
				return invalid("issue: challenge %d: timed phase: %v", i, err)
			}
		}
		if ch.CommitDeadlineUnixMs <= t.at {
			// Also what keeps a replayed issue of a challenge that
			// retention has deleted from coming back.
			return invalid("issue: challenge %d: commitment deadline passed before the issue was applied", i)
		}
		if ids[string(ch.Id)] {
			return invalid("issue: challenge %s listed twice", IDString(ch.Id))
		}
		ids[string(ch.Id)] = true
		// A nonce seeds the workload; a repeat would let a node answer
		// from a cached result. Nonces are unique among the challenges
		// the state holds (retention prunes both together).
		if ids["nonce:"+string(ch.Nonce)] {
			return invalid("issue: nonce of challenge %s listed twice", IDString(ch.Id))
		}
		ids["nonce:"+string(ch.Nonce)] = true
		if t.f.cache.nonces.mayContain(ch.Nonce) {
			if v, ok, err := t.get(key(prefixNonce, ch.Nonce)); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%w: challenge %s reuses the nonce of challenge %s", ErrConflict, IDString(ch.Id), IDString(v))
			}
		}
		if t.f.cache.ids.mayContain(ch.Id) {
			if _, ok, err := t.get(key(prefixChallenge, ch.Id)); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%w: challenge %s already issued", ErrConflict, IDString(ch.Id))
			}
		}
		devs, ok := t.f.cache.devices[[20]byte(ch.Address)]
		if !ok {
			return fmt.Errorf("%w: node %s", ErrNotFound, addrString(ch.Address))
		}
		if ch.DeviceIndex >= devs {
			return invalid("issue: node %s has no device %d", addrString(ch.Address), ch.DeviceIndex)
		}
	}
	for _, ch := range c.Challenges {
		t.putMsg(key(prefixChallenge, ch.Id), &truegpuv1.ChallengeState{Challenge: ch, Outcome: OutcomePending})
		t.pendingOpen = append(t.pendingOpen, openOp{[20]byte(ch.Address), [32]byte(ch.Id), true})
		t.set(key(prefixDeadline, be64(uint64(ch.CommitDeadlineUnixMs)), ch.Id), nil)
		t.set(key(prefixHistory, ch.Address, be64(uint64(max(ch.IssuedAtUnixMs, 0))), ch.Id), nil)
		t.set(key(prefixNonce, ch.Nonce), ch.Id)
		t.pending.Issued = append(t.pending.Issued, ch)
	}
	return nil
}

func (t *txn) recordCommitment(c *truegpuv1.RecordCommitmentCommand) error {
	if len(c.Root) != 32 {
		return invalid("commitment: root must be 32 bytes, got %d", len(c.Root))
	}
	if len(c.SampleSeed) != SampleSeedSize {
		return invalid("commitment: sample seed must be %d bytes, got %d", SampleSeedSize, len(c.SampleSeed))
	}
	cs, err := t.challenge(c.ChallengeId)
	if err != nil {
		return err
	}
	if cs.Outcome != OutcomePending {
		return fmt.Errorf("%w: challenge %s is %s", ErrConflict, IDString(c.ChallengeId), cs.Outcome)
	}
	ch := cs.Challenge
	switch {
	case ch.Timed != nil && len(c.TimedRoot) != 32:
		return invalid("commitment: %s has a timed phase: its root must be 32 bytes, got %d", IDString(c.ChallengeId), len(c.TimedRoot))
	case ch.Timed == nil && len(c.TimedRoot) != 0:
		return invalid("commitment: %s has no timed phase but carries a timed root", IDString(c.ChallengeId))
	case ch.Memory != nil && len(c.TableRoot) != 32:
		return invalid("commitment: %s has a memory phase: its table root must be 32 bytes, got %d", IDString(c.ChallengeId), len(c.TableRoot))
	case ch.Memory == nil && len(c.TableRoot) != 0:
		return invalid("commitment: %s has no memory phase but carries a table root", IDString(c.ChallengeId))
	}
	if c.ReceivedAtUnixMs > ch.CommitDeadlineUnixMs {
		return fmt.Errorf("%w: commitment for %s arrived %d ms after its deadline", ErrLate, IDString(c.ChallengeId), c.ReceivedAtUnixMs-ch.CommitDeadlineUnixMs)
	}
	if err := checkSignedCommitment(t.f.cfg.Recover, c, ch); err != nil {
		return err
	}
	cs.Outcome, cs.Root, cs.ReceivedAtUnixMs, cs.SampleSeed, cs.TimedRoot = OutcomeCommitted, c.Root, c.ReceivedAtUnixMs, c.SampleSeed, c.TimedRoot
	cs.TableRoot = c.TableRoot
	t.putMsg(key(prefixChallenge, c.ChallengeId), cs)
	t.del(key(prefixDeadline, be64(uint64(ch.CommitDeadlineUnixMs)), ch.Id))
	t.set(key(prefixDeadline, be64(uint64(openDeadline(cs))), ch.Id), nil)
	return nil
}

// openDeadline is the deadline an open challenge is waiting for: the
// commitment's while pending; once committed, the walk's while a memory
// phase has no walk root yet, else the proof's.
func openDeadline(cs *truegpuv1.ChallengeState) int64 {
	ch := cs.Challenge
	switch {
	case cs.Outcome == OutcomePending:
		return ch.CommitDeadlineUnixMs
	case ch.Memory != nil && len(cs.WalkRoot) == 0:
		return WalkDeadline(cs)
	default:
		return ch.ProofDeadlineUnixMs
	}
}

// WalkDeadline returns when the walk root of a committed challenge with a
// memory phase must arrive on the leader's clock, unix milliseconds: the
// commitment's recorded arrival plus the phase's walk deadline. Zero when
// the challenge has no memory phase or is not committed.
func WalkDeadline(cs *truegpuv1.ChallengeState) int64 {
	mp := cs.GetChallenge().GetMemory()
	if mp == nil || cs.ReceivedAtUnixMs == 0 || len(cs.Root) == 0 {
		return 0
	}
	return cs.ReceivedAtUnixMs + int64(min(mp.WalkDeadlineMs, 1<<40))
}

// WalkLatency returns a challenge's measured walk latency (commitment
// recorded to walk root recorded) and the claimed class's expected walk
// latency, milliseconds; zeros without a recorded walk.
func WalkLatency(cs *truegpuv1.ChallengeState) (elapsed, expected uint64) {
	mp := cs.GetChallenge().GetMemory()
	if mp == nil || len(cs.WalkRoot) == 0 {
		return 0, 0
	}
	return latency(cs.ReceivedAtUnixMs, cs.WalkReceivedAtUnixMs), gpuclass.TimedExpectedLatency(mp.WalkExpectedMs)
}

func (t *txn) recordWalk(c *truegpuv1.RecordWalkCommand) error {
	if len(c.WalkRoot) != 32 {
		return invalid("walk: root must be 32 bytes, got %d", len(c.WalkRoot))
	}
	if len(c.CheckSeed) != SampleSeedSize {
		return invalid("walk: check seed must be %d bytes, got %d", SampleSeedSize, len(c.CheckSeed))
	}
	cs, err := t.challenge(c.ChallengeId)
	if err != nil {
		return err
	}
	id := IDString(c.ChallengeId)
	switch {
	case cs.Challenge.Memory == nil:
		return invalid("walk: %s has no memory phase", id)
	case cs.Outcome != OutcomeCommitted:
		return fmt.Errorf("%w: challenge %s is %s", ErrConflict, id, cs.Outcome)
	case len(cs.WalkRoot) != 0:
		return fmt.Errorf("%w: challenge %s already has a walk root", ErrConflict, id)
	case c.ReceivedAtUnixMs > WalkDeadline(cs):
		return fmt.Errorf("%w: walk root for %s arrived %d ms after its deadline", ErrLate, id, c.ReceivedAtUnixMs-WalkDeadline(cs))
	}
	if err := checkSignedWalk(t.f.cfg.Recover, c, cs.Challenge); err != nil {
		return err
	}
	t.del(key(prefixDeadline, be64(uint64(openDeadline(cs))), cs.Challenge.Id))
	cs.WalkRoot, cs.WalkReceivedAtUnixMs, cs.CheckSeed = c.WalkRoot, c.ReceivedAtUnixMs, c.CheckSeed
	t.putMsg(key(prefixChallenge, c.ChallengeId), cs)
	t.set(key(prefixDeadline, be64(uint64(openDeadline(cs))), cs.Challenge.Id), nil)
	return nil
}

func latency(from, to int64) uint64 {
	if to <= from {
		return 0
	}
	return uint64(to - from)
}

func (t *txn) closeChallenge(cs *truegpuv1.ChallengeState) {
	ch := cs.Challenge
	t.pendingOpen = append(t.pendingOpen, openOp{[20]byte(ch.Address), [32]byte(ch.Id), false})
	t.del(key(prefixDeadline, be64(uint64(openDeadline(cs))), ch.Id))
}

// VerdictReasons are the rejection reasons a verdict may carry, each with
// the state it needs (docs/ORACLE.md). Expiries record PROOF_MISSING and
// LIVENESS_MISSED themselves; no verdict carries those.
var VerdictReasons = []reputation.Reason{
	reputation.ReasonCommitmentLate, reputation.ReasonProofMalformed, reputation.ReasonProofInvalid, reputation.ReasonInputMismatch,
	reputation.ReasonTimedInvalid, reputation.ReasonWalkLate, reputation.ReasonWalkInvalid,
}

// checkVerdict checks one verdict against its challenge's state: an
// acceptance needs a commitment and proof bytes; a rejection names one of
// VerdictReasons and is consistent with it. A late commitment's rejection
// applies to a pending challenge and carries an arrival after the
// deadline; a proof's rejection applies to a committed challenge and
// carries the proof it rejects (which may be empty only when malformed).
func checkVerdict(recover recoverFunc, v *truegpuv1.VerdictRecord, cs *truegpuv1.ChallengeState) error {
	id := IDString(v.ChallengeId)
	if cs.Outcome != OutcomePending && cs.Outcome != OutcomeCommitted {
		return fmt.Errorf("%w: challenge %s already %s", ErrConflict, id, cs.Outcome)
	}
	if v.Accepted {
		switch {
		case cs.Outcome != OutcomeCommitted:
			return fmt.Errorf("%w: challenge %s accepted without a commitment", ErrConflict, id)
		case v.Reason != "" || v.CommitReceivedAtUnixMs != 0:
			return invalid("verdicts: acceptance of %s carries a reason or an arrival", id)
		case len(v.Proof) == 0:
			return invalid("verdicts: acceptance of %s carries no proof", id)
		case cs.Challenge.Timed != nil && len(v.TimedOpenings) == 0:
			return invalid("verdicts: acceptance of %s carries no openings of its timed phase", id)
		case cs.Challenge.Memory != nil && (len(cs.WalkRoot) == 0 || len(v.WalkOpenings) == 0):
			return invalid("verdicts: acceptance of %s without a recorded walk and its openings", id)
		case v.WalkReceivedAtUnixMs != 0:
			return invalid("verdicts: acceptance of %s carries a walk arrival", id)
		}
		return checkSignedVerdict(recover, v, cs.Challenge, false)
	}
	late := v.Reason == string(reputation.ReasonCommitmentLate)
	walkLate := v.Reason == string(reputation.ReasonWalkLate)
	switch {
	case !slices.Contains(VerdictReasons, reputation.Reason(v.Reason)):
		return invalid("verdicts: %q is not a verdict's rejection reason (%s)", v.Reason, id)
	case walkLate && (cs.Outcome != OutcomeCommitted || cs.Challenge.Memory == nil || len(cs.WalkRoot) != 0):
		return fmt.Errorf("%w: challenge %s rejected as a late walk but is %s without an open memory phase", ErrConflict, id, cs.Outcome)
	case walkLate && v.WalkReceivedAtUnixMs <= WalkDeadline(cs):
		return invalid("verdicts: %s rejected as a late walk without an arrival after its deadline", id)
	case walkLate && (len(v.Proof) != 0 || len(v.TimedOpenings) != 0 || len(v.WalkOpenings) != 0 || v.CommitReceivedAtUnixMs != 0):
		return invalid("verdicts: late walk of %s rejected with proof bytes", id)
	case walkLate:
		return checkSignedWalkLate(recover, v, cs.Challenge)
	case v.WalkReceivedAtUnixMs != 0:
		return invalid("verdicts: only a late walk's rejection carries its arrival (%s)", id)
	case late && cs.Outcome != OutcomePending:
		return fmt.Errorf("%w: challenge %s rejected as late but already committed", ErrConflict, id)
	case late && v.CommitReceivedAtUnixMs <= cs.Challenge.CommitDeadlineUnixMs:
		return invalid("verdicts: %s rejected as late without an arrival after its deadline", id)
	case late && (len(v.Proof) != 0 || len(v.TimedOpenings) != 0 || len(v.WalkOpenings) != 0):
		return invalid("verdicts: late commitment of %s rejected with proof bytes", id)
	case late:
		return checkSignedVerdict(recover, v, cs.Challenge, true)
	case v.CommitReceivedAtUnixMs != 0:
		return invalid("verdicts: only a late commitment's rejection carries its arrival (%s)", id)
	case cs.Outcome != OutcomeCommitted:
		return fmt.Errorf("%w: challenge %s rejected as %s without a commitment", ErrConflict, id, v.Reason)
	case len(v.Proof) == 0 && v.Reason != string(reputation.ReasonProofMalformed) && v.Reason != string(reputation.ReasonTimedInvalid) &&
		v.Reason != string(reputation.ReasonWalkInvalid):
		return invalid("verdicts: %s rejected as %s without the proof it rejects", id, v.Reason)
	case v.Reason == string(reputation.ReasonTimedInvalid) && cs.Challenge.Timed == nil:
		return invalid("verdicts: %s rejected as %s but has no timed phase", id, v.Reason)
	case v.Reason == string(reputation.ReasonWalkInvalid) && (cs.Challenge.Memory == nil || len(cs.WalkRoot) == 0):
		return invalid("verdicts: %s rejected as %s but has no recorded walk", id, v.Reason)
	}
	return checkSignedVerdict(recover, v, cs.Challenge, false)
}

func (t *txn) recordVerdicts(c *truegpuv1.RecordVerdictsCommand) error {
	if len(c.Verdicts) == 0 {
		return invalid("verdicts: none")
	}
	meta, err := t.meta()
	if err != nil {
		return err
	}
	type item struct {
		v  *truegpuv1.VerdictRecord
		cs *truegpuv1.ChallengeState
	}
	items := make([]item, 0, len(c.Verdicts))
	seen := map[string]bool{}
	for _, v := range c.Verdicts {
		if seen[string(v.ChallengeId)] {
			return invalid("verdicts: challenge %s listed twice", IDString(v.ChallengeId))
		}
		seen[string(v.ChallengeId)] = true
		cs, err := t.challenge(v.ChallengeId)
		if err != nil {
			return err
		}
		fillVerdictFromSigned(v)
		if err := checkVerdict(t.f.cfg.Recover, v, cs); err != nil {
			return err
		}
		items = append(items, item{v, cs})
	}
	nodes := map[string]*truegpuv1.NodeRecord{}
	var order []string
	for i, it := range items {
		ch := it.cs.Challenge
		rec, ok := nodes[string(ch.Address)]
		if !ok {
			if rec, err = t.node(ch.Address); err != nil {
				return err
			}
			nodes[string(ch.Address)] = rec
			order = append(order, string(ch.Address))
		}
		t.closeChallenge(it.cs)
		lat := latency(ch.IssuedAtUnixMs, it.cs.ReceivedAtUnixMs)
		dev := ""
		if int(ch.DeviceIndex) < len(rec.Devices) {
			dev = rec.Devices[ch.DeviceIndex].GetFingerprint().GetUuid()
		}
		ev := reputation.Event{Challenge: IDString(ch.Id), Verdict: fmt.Sprintf("%d/%d", t.index, i), Device: dev}
		if it.v.Accepted {
			it.cs.Outcome = OutcomeAccepted
			rec.Counters.Accepted++
			ev.Kind, ev.ElapsedMs, ev.ExpectedMs = reputation.EventVerdictAccepted, lat, max(ch.ExpectedLatencyMs, 1)
			if wl, we := WalkLatency(it.cs); we > 0 && wl*ev.ExpectedMs > ev.ElapsedMs*we {
				// The timing evidence is the slower phase relative to
				// its expectation.
				ev.ElapsedMs, ev.ExpectedMs = wl, we
			}
		} else {
			it.cs.Outcome = OutcomeRejected
			rec.Counters.Rejected++
			if it.v.CommitReceivedAtUnixMs != 0 {
				it.cs.ReceivedAtUnixMs = it.v.CommitReceivedAtUnixMs
			}
			ev.Kind, ev.Reason = reputation.EventVerdictRejected, reputation.Reason(it.v.Reason)
			switch {
			case it.v.CommitReceivedAtUnixMs != 0:
				// How late, for the reputation model (absorbLate).
				ev.ElapsedMs, ev.ExpectedMs = latency(ch.IssuedAtUnixMs, it.v.CommitReceivedAtUnixMs), ch.ExpectedLatencyMs
				ev.DeadlineMs = latency(ch.IssuedAtUnixMs, ch.CommitDeadlineUnixMs)
			case it.v.WalkReceivedAtUnixMs != 0 && ch.Memory != nil:
				ev.ElapsedMs = latency(it.cs.ReceivedAtUnixMs, it.v.WalkReceivedAtUnixMs)
				ev.ExpectedMs, ev.DeadlineMs = gpuclass.TimedExpectedLatency(ch.Memory.WalkExpectedMs), ch.Memory.WalkDeadlineMs
			}
		}
		if err := t.event(rec, ev); err != nil {
			return err
		}
		// The node's signed request has been checked; the state keeps
		// what it established (the proof and openings), not the request.
		it.v.SignedRequest = nil
		it.cs.Verdict, it.cs.VerdictIndex = it.v, t.index
		t.recordDecided(it.cs, meta.CurrentEpoch)
		meta.TotalVerdicts++
	}
	for _, a := range order {
		t.putMsg(key(prefixNode, []byte(a)), nodes[a])
	}
	t.putMsg(keyMeta, meta)
	return nil
}

// recordDecided stores a challenge decided (accepted, rejected or missed)
// in the open epoch and lists it with the epoch's verdicts: the list the
// auditors re-check and retention later prunes.
func (t *txn) recordDecided(cs *truegpuv1.ChallengeState, epoch uint64) {
	cs.Epoch = epoch
	t.putMsg(key(prefixChallenge, cs.Challenge.Id), cs)
	t.set(key(prefixEpochVerd, be64(epoch), be64(t.index), be32(t.seq)), cs.Challenge.Id)
	t.seq++
}

func (t *txn) expireChallenges(c *truegpuv1.ExpireChallengesCommand) error {
	meta, err := t.meta()
	if err != nil {
		return err
	}
	nodes := map[string]*truegpuv1.NodeRecord{}
	var order []string
	for _, id := range c.ChallengeIds {
		cs, err := t.challenge(id)
		if err != nil {
			return err
		}
		ch := cs.Challenge
		due := (cs.Outcome == OutcomePending || cs.Outcome == OutcomeCommitted) && t.at > openDeadline(cs)
		if !due {
			continue // decided meanwhile, or not yet due: nothing to do
		}
		rec, ok := nodes[string(ch.Address)]
		if !ok {
			if rec, err = t.node(ch.Address); err != nil {
				return err
			}
			nodes[string(ch.Address)] = rec
			order = append(order, string(ch.Address))
		}
		committed := cs.Outcome == OutcomeCommitted
		t.closeChallenge(cs)
		cs.Outcome = OutcomeMissed
		rec.Counters.Missed++
		dev := ""
		if int(ch.DeviceIndex) < len(rec.Devices) {
			dev = rec.Devices[ch.DeviceIndex].GetFingerprint().GetUuid()
		}
		ev := reputation.Event{Kind: reputation.EventChallengeMissed, Challenge: IDString(ch.Id), Device: dev}
		switch {
		case committed && ch.Memory != nil && len(cs.WalkRoot) == 0:
			// Committed but never walked: the walk deadline is sized from
			// the claimed class's memory, so this is what a device with
			// less memory or bandwidth than claimed looks like when it
			// gives up (a capacity failure, like a late walk).
			ev.Kind, ev.Reason = reputation.EventVerdictRejected, reputation.ReasonWalkLate
		case committed:
			// Committed but never proven: the node could not open its own
			// commitment. That is a correctness failure, not a liveness one
			// (see reputation.ReasonProofMissing).
			ev.Kind, ev.Reason = reputation.EventVerdictRejected, reputation.ReasonProofMissing
		}
		if err := t.event(rec, ev); err != nil {
			return err
		}
		t.recordDecided(cs, meta.CurrentEpoch)
	}
	for _, a := range order {
		t.putMsg(key(prefixNode, []byte(a)), nodes[a])
	}
	return nil
}

// signers returns the members' signer addresses, sorted.
func (t *txn) signers() ([]ethcrypto.Address, error) {
	var out []ethcrypto.Address
	err := t.scan(prefixMember, func(_, v []byte) error {
		var m truegpuv1.SetMemberCommand
		if err := proto.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("fsm: corrupt member record: %w", err)
		}
		if len(m.SignerAddress) == 20 {
			out = append(out, ethcrypto.Address(m.SignerAddress))
		}
		return nil
	})
	return reputation.SortedMembers(out), err
}

// Threshold is the number of report signatures needed from n signers: a
// majority.
func Threshold(n int) int { return n/2 + 1 }

func (t *txn) closeEpoch(c *truegpuv1.CloseEpochCommand) error {
	meta, err := t.meta()
	if err != nil {
		return err
	}
	if c.Epoch != meta.CurrentEpoch {
		return fmt.Errorf("%w: close of epoch %d, open epoch is %d", ErrStaleEpoch, c.Epoch, meta.CurrentEpoch)
	}
	signers, err := t.signers()
	if err != nil {
		return err
	}
	var cfgDigest [32]byte
	threshold := 0
	if len(signers) > 0 {
		threshold = Threshold(len(signers))
		cfgDigest = reputation.ConfigDigest(signers, threshold, t.f.cfg.ParamsDigest)
	}
	if err := t.decideContests(); err != nil {
		return err
	}
	at := uint64(max(t.at, 0))
	var entries []reputation.Entry
	err = t.scan(prefixNode, func(k, v []byte) error {
		if w, ok := t.overlay[string(k)]; ok && w != nil {
			v = w // decided by decideContests in this command
		}
		var rec truegpuv1.NodeRecord
		if err := proto.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("fsm: corrupt node record: %w", err)
		}
		var st reputation.NodeState
		if err := st.UnmarshalBinary(rec.Reputation); err != nil {
			return fmt.Errorf("fsm: node %s: %w", addrString(rec.Address), err)
		}
		view := t.f.cfg.Model.View(st, at)
		score, status := Published(view.Status, view.Score, false)
		entries = append(entries, reputation.Entry{Address: ethcrypto.Address(rec.Address), Score: score, Status: status})
		return nil
	})
	if err != nil {
		return err
	}
	// entries are what enforcement publishes. In shadow mode the report
	// keeps their root and counts and publishes the neutral leaves.
	report, _, err := reputation.CloseEpoch(cfgDigest, c.Epoch, t.index, at/1000, entries)
	if err != nil {
		return fmt.Errorf("%w: close epoch %d: %w", ErrInvalidCommand, c.Epoch, err)
	}
	byStatus := map[string]uint32{}
	for _, e := range entries {
		byStatus[e.Status.String()]++
	}
	var enforcedRoot []byte
	if meta.Shadow {
		root := report.Root
		enforcedRoot = root[:]
		for i := range entries {
			entries[i].Score, entries[i].Status = Published(entries[i].Status, entries[i].Score, true)
		}
		if report, _, err = reputation.CloseEpoch(cfgDigest, c.Epoch, t.index, at/1000, entries); err != nil {
			return fmt.Errorf("%w: close epoch %d: %w", ErrInvalidCommand, c.Epoch, err)
		}
	}
	// The validity window follows from the leader's time of the command
	// and the configuration, so every replica signs the same digest.
	report.ValidFrom, report.ExpiresAt = reputation.ReportWindow(report.Timestamp, t.f.cfg.ReportClockSkew, t.f.cfg.ReportLifetime)
	digest := reputation.ReportDigest(t.f.cfg.Domain, report)
	dom := t.f.cfg.Domain
	es := &truegpuv1.EpochState{Report: &truegpuv1.EpochReport{
		Epoch: report.Epoch, Round: report.Round, Timestamp: report.Timestamp,
		ConfigDigest: report.ConfigDigest[:], Root: report.Root[:], Count: report.Count, Digest: digest[:],
		ValidFrom: report.ValidFrom, ExpiresAt: report.ExpiresAt,
		Domain:    &truegpuv1.Eip712Domain{Name: dom.Name, Version: dom.Version, ChainId: dom.ChainID, VerifyingContract: dom.VerifyingContract.String()},
		Threshold: uint32(threshold),
		Shadow:    meta.Shadow, EnforcedRoot: enforcedRoot, EnforcedByStatus: byStatus,
	}}
	for _, s := range signers {
		es.Report.Signers = append(es.Report.Signers, s.String())
	}
	for _, e := range entries {
		es.Leaves = append(es.Leaves, &truegpuv1.EpochLeaf{Address: e.Address[:], ScoreBp: e.Score, Status: truegpuv1.NodeStatus(e.Status)})
	}
	vp := key(prefixEpochVerd, be64(c.Epoch))
	err = t.scan(vp, func(k, v []byte) error {
		es.VerdictChallengeIds = append(es.VerdictChallengeIds, slices.Clone(v))
		t.del(slices.Clone(k))
		return nil
	})
	if err != nil {
		return err
	}
	t.putMsg(key(prefixEpoch, be64(c.Epoch)), es)
	if c.Epoch > t.f.cfg.RetainEpochs {
		if err := t.pruneEpoch(c.Epoch - t.f.cfg.RetainEpochs); err != nil {
			return err
		}
	}
	meta.CurrentEpoch++
	meta.EpochOpenedAtUnixMs = t.at
	t.putMsg(keyMeta, meta)
	t.pending.EpochClosed = c.Epoch
	return nil
}

// decideContests decides every undecided identity contest on the evidence
// its holders' challenges gathered (reputation.DecideConflict): losers and
// clone pairs get EventDuplicateDecided, a winner EventDuplicateResolved.
// A contest with nothing left undecided leaves the index. Its cost grows
// with the number of contested identities, not with the fleet.
func (t *txn) decideContests() error {
	var ids []string
	if err := t.scan(prefixContest, func(k, _ []byte) error {
		ids = append(ids, string(k[len(prefixContest):]))
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		holders, err := t.identityHolders(id)
		if err != nil {
			return err
		}
		recs := make([]*truegpuv1.NodeRecord, len(holders))
		states := make([]reputation.NodeState, len(holders))
		for i, a := range holders {
			if recs[i], err = t.node(a[:]); err != nil {
				return err
			}
			if err := states[i].UnmarshalBinary(recs[i].Reputation); err != nil {
				return fmt.Errorf("fsm: node %s: %w", a, err)
			}
		}
		open := 0
		for i, dec := range reputation.DecideConflict(id, states) {
			var ev reputation.Event
			switch dec {
			case reputation.Wins:
				ev = reputation.Event{Kind: reputation.EventDuplicateResolved, Identity: id}
			case reputation.Loses:
				ev = reputation.Event{Kind: reputation.EventDuplicateDecided, Identity: id, Reason: reputation.ReasonIdentityDuplicateLost}
			case reputation.Clone:
				ev = reputation.Event{Kind: reputation.EventDuplicateDecided, Identity: id, Reason: reputation.ReasonIdentityDuplicate}
			default:
				if contestOpen(states[i], id) {
					open++
				}
				continue
			}
			if err := t.event(recs[i], ev); err != nil {
				return err
			}
			t.putMsg(key(prefixNode, holders[i][:]), recs[i])
		}
		if open == 0 {
			t.del(key(prefixContest, []byte(id)))
		}
	}
	return nil
}

func contestOpen(st reputation.NodeState, id string) bool {
	for _, c := range st.Conflicts {
		if c.Identity == id && c.Outcome == reputation.ConflictOpen {
			return true
		}
	}
	return false
}

// pruneEpoch deletes the challenges decided in closed epoch e and their
// history rows. The epoch's report and its list of challenge ids stay;
// a member that has not audited the epoch by now no longer can, and does
// not sign it.
func (t *txn) pruneEpoch(e uint64) error {
	es := &truegpuv1.EpochState{}
	ok, err := t.getMsg(key(prefixEpoch, be64(e)), es)
	if err != nil || !ok {
		return err
	}
	for _, id := range es.VerdictChallengeIds {
		cs := &truegpuv1.ChallengeState{}
		found, err := t.getMsg(key(prefixChallenge, id), cs)
		if err != nil {
			return err
		}
		if !found || cs.Epoch != e {
			continue
		}
		ch := cs.Challenge
		t.del(key(prefixChallenge, id))
		t.del(key(prefixHistory, ch.Address, be64(uint64(max(ch.IssuedAtUnixMs, 0))), id))
		t.del(key(prefixNonce, ch.Nonce))
	}
	return nil
}

func (t *txn) addReportSignature(c *truegpuv1.AddReportSignatureCommand) error {
	sig := c.Signature
	if sig == nil || len(sig.Signature) != ethcrypto.SignatureLen {
		return invalid("report signature: want %d signature bytes", ethcrypto.SignatureLen)
	}
	es := &truegpuv1.EpochState{}
	ok, err := t.getMsg(key(prefixEpoch, be64(c.Epoch)), es)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: epoch %d has no report", ErrNotFound, c.Epoch)
	}
	signer, err := ethcrypto.ParseAddress(sig.SignerAddress)
	if err != nil {
		return invalid("report signature: signer: %v", err)
	}
	if !slices.Contains(es.Report.Signers, signer.String()) {
		return fmt.Errorf("%w: %s is not a signer of epoch %d", ErrBadSignature, signer, c.Epoch)
	}
	got, err := ethcrypto.RecoverAddress([32]byte(es.Report.Digest), sig.Signature)
	if err != nil || got != signer {
		return fmt.Errorf("%w: signature for epoch %d does not recover to %s", ErrBadSignature, c.Epoch, signer)
	}
	for _, s := range es.Report.Signatures {
		if s.SignerAddress == signer.String() {
			return fmt.Errorf("%w: %s already signed epoch %d", ErrConflict, signer, c.Epoch)
		}
	}
	es.Report.Signatures = append(es.Report.Signatures, &truegpuv1.MemberSignature{
		MemberId: sig.MemberId, SignerAddress: signer.String(), Signature: sig.Signature,
	})
	slices.SortFunc(es.Report.Signatures, func(a, b *truegpuv1.MemberSignature) int {
		x, _ := ethcrypto.ParseAddress(a.SignerAddress)
		y, _ := ethcrypto.ParseAddress(b.SignerAddress)
		return bytes.Compare(x[:], y[:])
	})
	if !es.Report.Complete && es.Report.Threshold > 0 && len(es.Report.Signatures) >= int(es.Report.Threshold) {
		es.Report.Complete = true
		meta, err := t.meta()
		if err != nil {
			return err
		}
		if c.Epoch > meta.LastCompleteEpoch {
			meta.LastCompleteEpoch = c.Epoch
			t.putMsg(keyMeta, meta)
		}
	}
	t.putMsg(key(prefixEpoch, be64(c.Epoch)), es)
	return nil
}

// setMember applies a member's signed row: the signature must recover to
// the row's own signer, the seq must be above the stored row's, an
// existing row keeps its signer, and no two members share a signer.
func (t *txn) setMember(c *truegpuv1.SetMemberCommand) error {
	if c.Id == "" || len(c.Id) > 128 {
		return invalid("member: id must be 1..128 bytes")
	}
	if len(c.SignerAddress) != 20 {
		return invalid("member %s: signer address must be 20 bytes", c.Id)
	}
	signer := ethcrypto.Address(c.SignerAddress)
	if err := VerifyMemberRow(c); err != nil {
		return err
	}
	old := &truegpuv1.SetMemberCommand{}
	found, err := t.getMsg(key(prefixMember, []byte(c.Id)), old)
	if err != nil {
		return err
	}
	if found && len(old.SignerAddress) == 20 && ethcrypto.Address(old.SignerAddress) != signer {
		return fmt.Errorf("%w: member %s signs with %s; a new signer needs the member removed and joined again", ErrConflict, c.Id, ethcrypto.Address(old.SignerAddress))
	}
	if found && c.Seq <= old.Seq {
		return fmt.Errorf("%w: member %s row seq %d is not above the current %d", ErrConflict, c.Id, c.Seq, old.Seq)
	}
	err = t.scan(prefixMember, func(_, v []byte) error {
		var m truegpuv1.SetMemberCommand
		if err := proto.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("fsm: corrupt member record: %w", err)
		}
		if m.Id != c.Id && len(m.SignerAddress) == 20 && ethcrypto.Address(m.SignerAddress) == signer {
			return fmt.Errorf("%w: signer %s belongs to member %s", ErrConflict, signer, m.Id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t.putMsg(key(prefixMember, []byte(c.Id)), c)
	return nil
}

// VerifyMemberRow checks that a member row is signed by its own signer:
// its signature over SigningDigest(row) recovers to row.SignerAddress.
func VerifyMemberRow(row *truegpuv1.SetMemberCommand) error {
	if len(row.SignerAddress) != 20 {
		return invalid("member %s: signer address must be 20 bytes", row.Id)
	}
	digest, err := truegpuv1.SigningDigest(row)
	if err != nil {
		return fmt.Errorf("%w: member %s: %v", ErrInvalidCommand, row.Id, err)
	}
	got, err := ethcrypto.RecoverAddress(digest, row.Signature)
	if err != nil || got != ethcrypto.Address(row.SignerAddress) {
		return fmt.Errorf("%w: member %s: the row is not signed by its signer %s", ErrBadSignature, row.Id, ethcrypto.Address(row.SignerAddress))
	}
	return nil
}

// SignMemberRow sets row.Signature to key's signature of the row; key must
// be the row's signer.
func SignMemberRow(row *truegpuv1.SetMemberCommand, key *ethcrypto.PrivateKey) error {
	row.Signature = nil
	digest, err := truegpuv1.SigningDigest(row)
	if err != nil {
		return err
	}
	sig, err := key.SignHash(digest)
	if err != nil {
		return err
	}
	row.Signature = sig[:]
	return nil
}

func (t *txn) removeMember(c *truegpuv1.RemoveMemberCommand) error {
	if _, ok, err := t.get(key(prefixMember, []byte(c.Id))); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: member %q", ErrNotFound, c.Id)
	}
	t.del(key(prefixMember, []byte(c.Id)))
	return nil
}
