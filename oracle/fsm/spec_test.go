package fsm

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// TestSpec runs the state machine's scripts in testdata/spec: commands in,
// the outcome of each and dumps of the replicated state out. Nodes,
// challenges and members are named in the scripts; times are offsets from
// specT0 ("90s", "15m", "250ms"). Run with -rewrite to regenerate the
// expected output after an intended change of the state.
//
// Commands (at=<offset> sets the leader's time first; it stays until the
// next at=):
//
//	register node=<n> devices=(<uuid>[:<serial>],...)
//	issue node=<n> challenge=<c> [device=<i>] [commit=<dur>] [proof=<dur>] [expected=<ms>]
//	commit challenge=<c>
//	accept challenge=<c>
//	reject challenge=<c> reason=<CODE> [arrived=<offset>]
//	expire challenges=(<c>,...)
//	member id=<m>
//	close-epoch [epoch=<e>]
//	sign epoch=<e> member=<m>
//	dump [node] [device] [identity] [contest] [challenge] [deadline] [history] [nonce] [verdict] [epoch] [member] [meta]
//
// dump prints every record of the named kinds (all kinds when none is
// named) in key order; the listing index (derived from the node records,
// list.go) is left out.
func TestSpec(t *testing.T) {
	datadriven.Walk(t, "testdata/spec", func(t *testing.T, path string) {
		s := newSpec(t)
		datadriven.RunTest(t, path, s.run)
	})
}

// specT0 is the base time of the scripts.
const specT0 = int64(1_700_000_000_000)

type spec struct {
	f          *FSM
	now        int64
	nodes      map[string][]byte // name -> address
	challenges map[string]*truegpuv1.IssuedChallenge
	members    map[string]*ethcrypto.PrivateKey
	names      map[string]string // address or challenge id (API form) -> name
}

func newSpec(t *testing.T) *spec {
	f, err := Open(t.TempDir(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &spec{f: f, now: specT0, nodes: map[string][]byte{}, challenges: map[string]*truegpuv1.IssuedChallenge{},
		members: map[string]*ethcrypto.PrivateKey{}, names: map[string]string{}}
}

// specDuration parses "0", "250ms", "90s", "15m", "2h" into milliseconds.
func specDuration(t *testing.T, s string) int64 {
	t.Helper()
	for _, u := range []struct {
		suffix string
		ms     int64
	}{{"ms", 1}, {"s", 1000}, {"m", 60_000}, {"h", 3_600_000}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			if n, err := strconv.ParseInt(num, 10, 64); err == nil {
				return n * u.ms
			}
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("bad duration %q", s)
	}
	return n
}

// offset prints unix milliseconds as an offset from specT0.
func offset(ms int64) string {
	d, sign := ms-specT0, "+"
	if d < 0 {
		d, sign = -d, "-"
	}
	switch {
	case d != 0 && d%3_600_000 == 0:
		return fmt.Sprintf("%s%dh", sign, d/3_600_000)
	case d != 0 && d%60_000 == 0:
		return fmt.Sprintf("%s%dm", sign, d/60_000)
	case d != 0 && d%1000 == 0:
		return fmt.Sprintf("%s%ds", sign, d/1000)
	}
	return fmt.Sprintf("%s%dms", sign, d)
}

func (s *spec) node(name string) []byte {
	a, ok := s.nodes[name]
	if !ok {
		k := nodeKey([]byte("fsm-spec/" + name))
		addr := k.Address()
		a = addr[:]
		s.nodes[name] = a
		s.names[addr.String()] = name
	}
	return a
}

func (s *spec) challenge(t *testing.T, name string) *truegpuv1.IssuedChallenge {
	ch, ok := s.challenges[name]
	if !ok {
		t.Fatalf("no challenge %q issued", name)
	}
	return ch
}

// name replaces the addresses and challenge ids in str by their names.
func (s *spec) name(str string) string {
	// Longest first: challenge ids before addresses.
	keys := slices.SortedFunc(maps.Keys(s.names), func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
	for _, k := range keys {
		str = strings.ReplaceAll(str, k, s.names[k])
		str = strings.ReplaceAll(str, strings.ToLower(k), s.names[k])
	}
	return str
}

func (s *spec) apply(t *testing.T, body any) string {
	c := &truegpuv1.Command{Version: CommandVersion, LeaderTimeUnixMs: s.now}
	switch b := body.(type) {
	case *truegpuv1.SetMemberCommand:
		c.Body = &truegpuv1.Command_SetMember{SetMember: b}
	case *truegpuv1.AddReportSignatureCommand:
		c.Body = &truegpuv1.Command_AddReportSignature{AddReportSignature: b}
	default:
		c = commandAt(s.now, body)
	}
	r := s.f.Apply(entry(t, s.f.AppliedIndex()+1, c)).(*Result)
	if err := r.Errs[0]; err != nil {
		return s.name(fmt.Sprintf("error: %v\n", err))
	}
	return "ok\n"
}

func (s *spec) run(t *testing.T, d *datadriven.TestData) string {
	str := func(key string) string {
		var v string
		if d.HasArg(key) {
			d.ScanArgs(t, key, &v)
		}
		return v
	}
	list := func(key string) []string {
		var v []string
		d.ScanArgs(t, key, &v)
		return v
	}
	if d.HasArg("at") {
		s.now = specT0 + specDuration(t, str("at"))
	}
	switch d.Cmd {
	case "register":
		addr := s.node(str("node"))
		var devs []*truegpuv1.Device
		for i, v := range list("devices") {
			uuid, serial, _ := strings.Cut(v, ":")
			dev := device(i, uuid)
			dev.Fingerprint.Serial = serial
			devs = append(devs, dev)
		}
		return s.apply(t, signRegister(&truegpuv1.RegisterNodeCommand{Address: addr, Devices: devs}))
	case "issue":
		name := str("challenge")
		addr := s.node(str("node"))
		var dev uint64
		if d.HasArg("device") {
			d.ScanArgs(t, "device", &dev)
		}
		commit, proof, expected := int64(2000), int64(60_000), uint64(800)
		if d.HasArg("commit") {
			commit = specDuration(t, str("commit"))
		}
		if d.HasArg("proof") {
			proof = specDuration(t, str("proof"))
		}
		if d.HasArg("expected") {
			d.ScanArgs(t, "expected", &expected)
		}
		nonce := ethcrypto.Keccak256([]byte("fsm-spec nonce/" + name))
		id := truegpuv1.ChallengeID(nonce[:], addr, uint32(dev), s.now)
		ch := &truegpuv1.IssuedChallenge{Id: id[:], Address: addr, DeviceIndex: uint32(dev), Nonce: nonce[:], Profile: "test/v1",
			ClaimedClass: "H100-SXM", IssuedAtUnixMs: s.now, CommitDeadlineUnixMs: s.now + commit, ProofDeadlineUnixMs: s.now + proof,
			ExpectedLatencyMs: expected}
		s.challenges[name] = ch
		s.names[truegpuv1.FormatChallengeID(id[:])] = name
		return s.apply(t, &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}})
	case "commit":
		ch := s.challenge(t, str("challenge"))
		root := ethcrypto.Keccak256([]byte("fsm-spec root/" + str("challenge")))
		return s.apply(t, signCommit(ch.Address, &truegpuv1.RecordCommitmentCommand{ChallengeId: ch.Id, Root: root[:],
			ReceivedAtUnixMs: s.now, SampleSeed: root[:SampleSeedSize]}))
	case "accept", "reject":
		ch := s.challenge(t, str("challenge"))
		v := &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Accepted: d.Cmd == "accept", DecidedAtUnixMs: s.now, Proof: []byte{1, 2, 3}}
		if d.Cmd == "reject" {
			v.Reason = str("reason")
			if d.HasArg("arrived") {
				v.CommitReceivedAtUnixMs = specT0 + specDuration(t, str("arrived"))
				v.Proof = nil
			}
		}
		return s.apply(t, &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{signVerdict(ch.Address, v)}})
	case "expire":
		var ids [][]byte
		for _, n := range list("challenges") {
			ids = append(ids, s.challenge(t, n).Id)
		}
		return s.apply(t, &truegpuv1.ExpireChallengesCommand{ChallengeIds: ids})
	case "member":
		id := str("id")
		k := ethcrypto.KeyFromSeed([]byte("fsm-spec member/" + id))
		s.members[id] = k
		a := k.Address()
		s.names[a.String()] = id
		row := &truegpuv1.SetMemberCommand{Id: id, SignerAddress: a[:], GrpcAddress: "127.0.0.1:1", Seq: 1}
		if err := SignMemberRow(row, k); err != nil {
			t.Fatal(err)
		}
		return s.apply(t, row)
	case "close-epoch":
		meta, err := s.f.Meta()
		if err != nil {
			t.Fatal(err)
		}
		e := meta.CurrentEpoch
		if d.HasArg("epoch") {
			d.ScanArgs(t, "epoch", &e)
		}
		return s.apply(t, &truegpuv1.CloseEpochCommand{Epoch: e})
	case "sign":
		var e uint64
		d.ScanArgs(t, "epoch", &e)
		m := str("member")
		k, ok := s.members[m]
		if !ok {
			t.Fatalf("no member %q", m)
		}
		es, err := s.f.Epoch(e)
		if err != nil {
			return s.name(fmt.Sprintf("error: %v\n", err))
		}
		sig, err := k.SignHash([32]byte(es.Report.Digest))
		if err != nil {
			t.Fatal(err)
		}
		return s.apply(t, &truegpuv1.AddReportSignatureCommand{Epoch: e,
			Signature: &truegpuv1.MemberSignature{MemberId: m, SignerAddress: k.Address().String(), Signature: sig[:]}})
	case "dump":
		kinds := map[string]bool{}
		for _, a := range d.CmdArgs {
			kinds[a.Key] = true
		}
		return s.dump(t, kinds)
	}
	t.Fatalf("unknown command %q", d.Cmd)
	return ""
}

// dump prints the records of the given kinds (every kind when empty).
func (s *spec) dump(t *testing.T, kinds map[string]bool) string {
	var b strings.Builder
	want := func(k string) bool { return len(kinds) == 0 || kinds[k] }
	name := func(raw []byte) string { return s.name(addrString(raw)) }
	cname := func(id []byte) string { return s.name(truegpuv1.FormatChallengeID(id)) }
	unmarshal := func(v []byte, m proto.Message) {
		if err := proto.Unmarshal(v, m); err != nil {
			t.Fatal(err)
		}
	}
	it, err := s.f.db.NewIter(&pebble.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		has := func(p []byte) bool { return bytes.HasPrefix(k, p) }
		rest := func(p []byte) []byte { return k[len(p):] }
		switch {
		case bytes.Equal(k, keyMeta) && want("meta"):
			var m truegpuv1.MetaState
			unmarshal(v, &m)
			fmt.Fprintf(&b, "meta: epoch=%d last-complete=%d nodes=%d verdicts=%d shadow=%v\n", m.CurrentEpoch, m.LastCompleteEpoch, m.NodeCount, m.TotalVerdicts, m.Shadow)
		case has(prefixNode) && want("node"):
			var rec truegpuv1.NodeRecord
			unmarshal(v, &rec)
			s.dumpNode(&b, &rec)
		case has(prefixDevCount) && want("device"):
			n, _ := binary.Uvarint(v)
			fmt.Fprintf(&b, "device-count %s: %d\n", name(rest(prefixDevCount)), n)
		case has(prefixIdentity) && want("identity"):
			id, addr, _ := bytes.Cut(rest(prefixIdentity), []byte{0})
			fmt.Fprintf(&b, "identity %s: %s\n", id, name(addr))
		case has(prefixContest) && want("contest"):
			fmt.Fprintf(&b, "contest %s\n", rest(prefixContest))
		case has(prefixChallenge) && want("challenge"):
			var cs truegpuv1.ChallengeState
			unmarshal(v, &cs)
			s.dumpChallenge(&b, &cs)
		case has(prefixDeadline) && want("deadline"):
			r := rest(prefixDeadline)
			fmt.Fprintf(&b, "deadline %s: %s\n", offset(int64(binary.BigEndian.Uint64(r[:8]))), cname(r[8:]))
		case has(prefixHistory) && want("history"):
			r := rest(prefixHistory)
			fmt.Fprintf(&b, "history %s %s: %s\n", name(r[:20]), offset(int64(binary.BigEndian.Uint64(r[20:28]))), cname(r[28:]))
		case has(prefixNonce) && want("nonce"):
			fmt.Fprintf(&b, "nonce of %s\n", cname(v))
		case has(prefixEpochVerd) && want("verdict"):
			r := rest(prefixEpochVerd)
			fmt.Fprintf(&b, "verdict epoch=%d index=%d seq=%d: %s\n", binary.BigEndian.Uint64(r[:8]), binary.BigEndian.Uint64(r[8:16]),
				binary.BigEndian.Uint32(r[16:20]), cname(v))
		case has(prefixEpoch) && want("epoch"):
			var es truegpuv1.EpochState
			unmarshal(v, &es)
			s.dumpEpoch(&b, &es)
		case has(prefixMember) && want("member"):
			var m truegpuv1.SetMemberCommand
			unmarshal(v, &m)
			fmt.Fprintf(&b, "member %s: seq=%d\n", m.Id, m.Seq)
		}
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if b.Len() == 0 {
		return "empty\n"
	}
	return b.String()
}

func (s *spec) dumpNode(b *strings.Builder, rec *truegpuv1.NodeRecord) {
	var devs []string
	for _, d := range rec.Devices {
		dev := d.GetFingerprint().GetUuid()
		if sn := d.GetFingerprint().GetSerial(); sn != "" {
			dev += ":" + sn
		}
		devs = append(devs, dev)
	}
	c := rec.GetCounters()
	fmt.Fprintf(b, "node %s: status=%s score=%d devices=%s accepted=%d rejected=%d missed=%d registered=%s updated=%s\n",
		s.name(addrString(rec.Address)), reputation.Status(rec.Status), rec.ScoreBp, strings.Join(devs, ","),
		c.GetAccepted(), c.GetRejected(), c.GetMissed(), offset(rec.RegisteredAtUnixMs), offset(rec.UpdatedAtUnixMs))
	dims := rec.GetDimensions()
	fmt.Fprintf(b, "  identity=%d/%d capacity=%d/%d liveness=%d/%d correctness=%d/%d (score/confidence)\n",
		dims.GetIdentity().GetScoreBp(), dims.GetIdentity().GetConfidenceBp(), dims.GetCapacity().GetScoreBp(), dims.GetCapacity().GetConfidenceBp(),
		dims.GetLiveness().GetScoreBp(), dims.GetLiveness().GetConfidenceBp(), dims.GetCorrectness().GetScoreBp(), dims.GetCorrectness().GetConfidenceBp())
	for _, r := range rec.Reasons {
		var ev []string
		for _, e := range r.Evidence {
			if e.ChallengeId != "" {
				ev = append(ev, "challenge "+s.name(e.ChallengeId))
			}
			if len(e.RelatedAddresses) > 0 {
				ev = append(ev, "nodes "+s.name(strings.Join(e.RelatedAddresses, ",")))
			}
			if e.AtUnixMs != 0 && len(ev) > 0 {
				ev[len(ev)-1] += " at " + offset(e.AtUnixMs)
			}
		}
		line := fmt.Sprintf("  reason %s: %s", r.Code, s.name(r.Detail))
		if len(ev) > 0 {
			line += " [" + strings.Join(ev, "; ") + "]"
		}
		b.WriteString(line + "\n")
	}
}

func (s *spec) dumpChallenge(b *strings.Builder, cs *truegpuv1.ChallengeState) {
	ch := cs.Challenge
	fmt.Fprintf(b, "challenge %s: node=%s device=%d outcome=%s issued=%s commit-by=%s prove-by=%s",
		s.name(truegpuv1.FormatChallengeID(ch.Id)), s.name(addrString(ch.Address)), ch.DeviceIndex, cs.Outcome,
		offset(ch.IssuedAtUnixMs), offset(ch.CommitDeadlineUnixMs), offset(ch.ProofDeadlineUnixMs))
	if cs.ReceivedAtUnixMs != 0 {
		fmt.Fprintf(b, " committed=%s", offset(cs.ReceivedAtUnixMs))
	}
	if v := cs.Verdict; v != nil {
		fmt.Fprintf(b, " verdict-index=%d", cs.VerdictIndex)
		if v.Reason != "" {
			fmt.Fprintf(b, " reason=%s", v.Reason)
		}
	}
	if cs.Epoch != 0 {
		fmt.Fprintf(b, " epoch=%d", cs.Epoch)
	}
	b.WriteString("\n")
}

func (s *spec) dumpEpoch(b *strings.Builder, es *truegpuv1.EpochState) {
	r := es.Report
	fmt.Fprintf(b, "epoch %d: round=%d count=%d threshold=%d signatures=%d complete=%v shadow=%v valid=%s..%s\n",
		r.Epoch, r.Round, r.Count, r.Threshold, len(r.Signatures), r.Complete, r.Shadow,
		offset(int64(r.ValidFrom)*1000), offset(int64(r.ExpiresAt)*1000))
	if len(r.Signers) > 0 {
		fmt.Fprintf(b, "  signers: %s\n", s.name(strings.Join(r.Signers, ",")))
	}
	for _, sig := range r.Signatures {
		fmt.Fprintf(b, "  signed by %s\n", sig.MemberId)
	}
	var statuses []string
	for _, st := range slices.Sorted(maps.Keys(r.EnforcedByStatus)) {
		statuses = append(statuses, fmt.Sprintf("%s=%d", st, r.EnforcedByStatus[st]))
	}
	fmt.Fprintf(b, "  by status: %s\n", strings.Join(statuses, " "))
	for _, l := range es.Leaves {
		fmt.Fprintf(b, "  leaf %s: status=%s score=%d\n", s.name(addrString(l.Address)), reputation.Status(l.Status), l.ScoreBp)
	}
	var ids []string
	for _, id := range es.VerdictChallengeIds {
		ids = append(ids, s.name(truegpuv1.FormatChallengeID(id)))
	}
	if len(ids) > 0 {
		fmt.Fprintf(b, "  verdicts: %s\n", strings.Join(ids, ","))
	}
}
