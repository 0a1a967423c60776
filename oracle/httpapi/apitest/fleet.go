package apitest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// BaseTime is the fixture's "now": every timestamp lies before it.
var BaseTime = time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC)

// Sizes of the fixture fleet.
const (
	NumNodes     = 36
	NumTrusted   = 18
	NumProbation = 7
	NumSuspect   = 5
	NumRejected  = 6
)

// classInfo describes a GPU class for generated fingerprints and timings.
type classInfo struct {
	name, product   string
	memGiB          uint64
	ccMajor, ccMin  uint32
	expectedMs      uint64
	pciDevice       uint32
	smMHz, memMHz   uint32
	powerLimitWatts uint32
}

var classes = map[string]classInfo{
	"H100-SXM":  {"H100-SXM", "NVIDIA H100 80GB HBM3", 80, 9, 0, 142, 0x233010DE, 1980, 2619, 700},
	"H200":      {"H200", "NVIDIA H200", 141, 9, 0, 131, 0x233510DE, 1980, 3201, 700},
	"A100-80GB": {"A100-80GB", "NVIDIA A100-SXM4-80GB", 80, 8, 0, 268, 0x20B210DE, 1410, 1593, 400},
	"L40S":      {"L40S", "NVIDIA L40S", 48, 8, 9, 331, 0x26B910DE, 2520, 9001, 350},
	"RTX-4090":  {"RTX-4090", "NVIDIA GeForce RTX 4090", 24, 8, 9, 297, 0x268410DE, 2520, 10501, 450},
	"RTX-3090":  {"RTX-3090", "NVIDIA GeForce RTX 3090", 24, 8, 6, 534, 0x220410DE, 1695, 9751, 350},
}

// archetype is the story of one generated node.
type archetype struct {
	status  truegpuv1.NodeStatus
	class   string
	devices int
	story   string // "honest", "new", "flaky", "fake-class", "duplicate", "bad-proof"
}

func archetypes() []archetype {
	var out []archetype
	trusted := []struct {
		c string
		d int
	}{{"H100-SXM", 8}, {"A100-80GB", 4}, {"RTX-4090", 1}, {"L40S", 4}, {"H200", 8}, {"RTX-4090", 2}}
	for i := range NumTrusted {
		t := trusted[i%len(trusted)]
		out = append(out, archetype{truegpuv1.NodeStatus_NODE_STATUS_TRUSTED, t.c, t.d, "honest"})
	}
	probation := []string{"RTX-4090", "H100-SXM", "RTX-3090", "L40S", "A100-80GB", "RTX-4090", "H200"}
	for i := range NumProbation {
		out = append(out, archetype{truegpuv1.NodeStatus_NODE_STATUS_PROBATION, probation[i], 1 + i%2, "new"})
	}
	suspect := []string{"RTX-3090", "A100-80GB", "RTX-4090", "L40S", "H100-SXM"}
	for i := range NumSuspect {
		out = append(out, archetype{truegpuv1.NodeStatus_NODE_STATUS_SUSPECT, suspect[i], 1 + i%3, "flaky"})
	}
	rejected := []archetype{
		{truegpuv1.NodeStatus_NODE_STATUS_REJECTED, "H100-SXM", 8, "fake-class"},
		{truegpuv1.NodeStatus_NODE_STATUS_REJECTED, "H100-SXM", 4, "fake-class"},
		{truegpuv1.NodeStatus_NODE_STATUS_REJECTED, "A100-80GB", 2, "duplicate"},
		{truegpuv1.NodeStatus_NODE_STATUS_REJECTED, "A100-80GB", 2, "duplicate"},
		{truegpuv1.NodeStatus_NODE_STATUS_REJECTED, "RTX-4090", 1, "bad-proof"},
		{truegpuv1.NodeStatus_NODE_STATUS_REJECTED, "H200", 8, "fake-class"},
	}
	return append(out, rejected[:NumRejected]...)
}

// rng is a small deterministic generator (Keccak-based) for fixture data.
type rng struct {
	seed []byte
	n    uint64
}

func (r *rng) next() uint64 {
	r.n++
	var ctr [8]byte
	binary.BigEndian.PutUint64(ctr[:], r.n)
	h := ethcrypto.Keccak256(r.seed, ctr[:])
	return binary.BigEndian.Uint64(h[:8])
}

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi uint64) uint64 { return lo + r.next()%(hi-lo+1) }

func (r *rng) hex(n int) string {
	var b []byte
	for len(b) < n {
		h := ethcrypto.Keccak256(r.seed, binary.BigEndian.AppendUint64(nil, r.next()))
		b = append(b, h[:]...)
	}
	return hex.EncodeToString(b[:n])
}

// New returns the standard fixture: NumNodes nodes, a three-member cluster
// led by oracle-1, and reports for epochs 41 and 42 (complete) and 43 (one
// signature so far).
func New() *Fixture {
	f := &Fixture{
		fail:     map[string]error{},
		watchers: map[chan *truegpuv1.ScoreChange]struct{}{},
		reports:  map[uint64]*truegpuv1.EpochReport{},
		nextIdx:  48213,
	}
	base := BaseTime.UnixMilli()
	arch := archetypes()
	addrs := make([]string, len(arch))
	for i := range arch {
		addrs[i] = ethcrypto.KeyFromSeed(fmt.Appendf(nil, "apitest-node-%d", i)).Address().String()
	}
	var dupUUID string
	var dupPeers []string
	for i, a := range arch {
		if a.story == "duplicate" {
			dupPeers = append(dupPeers, addrs[i])
		}
	}
	for i, a := range arch {
		r := &rng{seed: []byte(addrs[i])}
		n := genNode(r, addrs[i], a, base, i)
		if a.story == "duplicate" {
			if dupUUID == "" {
				dupUUID = n.Devices[0].Fingerprint.Uuid
			}
			n.Devices[0].Fingerprint.Uuid = dupUUID
			var others []string
			for _, p := range dupPeers {
				if p != addrs[i] {
					others = append(others, p)
				}
			}
			n.Reasons[0].Evidence[0].RelatedAddresses = others
			n.Reasons[0].Detail = fmt.Sprintf("device 0 (%s) is also registered by %s", dupUUID, strings.Join(others, ", "))
		}
		f.nodes = append(f.nodes, n)
	}
	slices.SortFunc(f.nodes, func(a, b *truegpuv1.NodeReputation) int {
		return strings.Compare(strings.ToLower(a.Address), strings.ToLower(b.Address))
	})

	f.fleet = genFleet(base)
	f.cluster, f.reports = genCluster(base, len(f.nodes))
	f.health = &truegpuv1.GetHealthResponse{Status: "serving", RaftState: "leader", AppliedIndex: 48213, LeaderId: "oracle-1"}
	return f
}

func genNode(r *rng, addr string, a archetype, base int64, idx int) *truegpuv1.NodeReputation {
	ci := classes[a.class]
	n := &truegpuv1.NodeReputation{
		Address: addr,
		Status:  a.status,
	}
	for d := range a.devices {
		n.Devices = append(n.Devices, &truegpuv1.Device{
			Index:        uint32(d),
			ClaimedClass: a.class,
			Fingerprint: &truegpuv1.DeviceFingerprint{
				Uuid:                   "GPU-" + r.hex(4) + "-" + r.hex(2) + "-" + r.hex(2) + "-" + r.hex(2) + "-" + r.hex(6),
				Serial:                 fmt.Sprintf("%013d", r.between(1320000000000, 1329999999999)),
				BoardPartNumber:        "699-2G" + fmt.Sprint(r.between(100, 999)) + "-0200-A1",
				BoardId:                uint64(0x100 + d*0x100),
				PciBusId:               fmt.Sprintf("00000000:%02X:00.0", 0x18+d*0x11),
				PciDeviceId:            ci.pciDevice,
				PciSubsystemId:         0x16C110DE,
				Name:                   ci.product,
				MemoryTotalBytes:       ci.memGiB << 30,
				VbiosVersion:           fmt.Sprintf("96.00.%02X.00.01", r.between(0x30, 0x99)),
				DriverVersion:          "550.54.15",
				CudaDriverVersion:      12040,
				ComputeCapabilityMajor: ci.ccMajor,
				ComputeCapabilityMinor: ci.ccMin,
				MaxSmClockMhz:          ci.smMHz,
				MaxMemoryClockMhz:      ci.memMHz,
				PowerLimitMw:           ci.powerLimitWatts * 1000,
				CcMode:                 "off",
			},
		})
	}
	if a.story == "fake-class" {
		// A consumer card or a CPU claiming a data-centre class: the name
		// says so, but the timings give it away.
		for _, d := range n.Devices {
			d.Fingerprint.Name = classes["RTX-3090"].product
			d.Fingerprint.MemoryTotalBytes = 24 << 30
			d.Fingerprint.ComputeCapabilityMajor, d.Fingerprint.ComputeCapabilityMinor = 8, 6
			d.Fingerprint.UnsupportedFields = []string{"serial", "board_part_number"}
			d.Fingerprint.Serial = ""
		}
	}

	// Challenge history, newest first, one every 7 minutes per node.
	nch := 14
	if a.story == "new" {
		nch = 4 + idx%3
	}
	var (
		history  []*truegpuv1.ChallengeRecord
		counters truegpuv1.NodeCounters
	)
	for k := range nch {
		issued := base - int64(k)*7*60_000 - int64(r.between(0, 50_000))
		expected := ci.expectedMs
		deadline := issued + int64(expected*2) + 250
		c := &truegpuv1.ChallengeRecord{
			ChallengeId:          "0x" + r.hex(16),
			DeviceIndex:          uint32(r.between(0, uint64(a.devices-1))),
			Profile:              "standard/v1",
			IssuedAtUnixMs:       issued,
			CommitDeadlineUnixMs: deadline,
			ExpectedLatencyMs:    expected,
			Outcome:              "accepted",
		}
		lat := expected * r.between(86, 112) / 100
		switch a.story {
		case "fake-class":
			lat = expected * r.between(330, 460) / 100
			c.Outcome, c.Reason = "rejected", "COMMITMENT_LATE"
		case "flaky":
			if k%3 == 1 {
				lat = 0
				c.Outcome, c.Reason = "missed", "LIVENESS_MISSED"
			}
		case "bad-proof":
			if k < 5 {
				c.Outcome, c.Reason = "rejected", "PROOF_INVALID"
			}
		}
		if k%5 == 2 && a.story != "new" {
			c.StormId = fmt.Sprintf("storm-%d", (base/1000-int64(k)*420)/3600)
		}
		c.CommitLatencyMs = lat
		if k == 0 && a.story == "honest" && idx%4 == 0 {
			c.Outcome = "committed"
		}
		counters.Issued++
		switch c.Outcome {
		case "accepted":
			counters.Accepted++
		case "rejected":
			counters.Rejected++
		case "missed":
			counters.Missed++
		}
		history = append(history, c)
	}
	n.RecentChallenges = history
	// Lifetime counters extend past the recent window.
	older := r.between(40, 400)
	if a.story == "new" {
		older = 0
	}
	counters.Issued += older
	switch a.story {
	case "honest", "new", "duplicate":
		counters.Accepted += older
	case "flaky":
		counters.Accepted += older * 8 / 10
		counters.Missed += older - older*8/10
	default:
		counters.Rejected += older / 3
		counters.Accepted += older - older/3
	}
	n.Counters = &counters
	n.RegisteredAtUnixMs = base - int64(r.between(2, 20))*86_400_000
	if a.story == "new" {
		n.RegisteredAtUnixMs = base - int64(r.between(1, 5))*3_600_000
	}
	n.UpdatedAtUnixMs = history[0].IssuedAtUnixMs + int64(history[0].CommitLatencyMs) + 900

	dim := func(lo, hi, clo, chi uint64) *truegpuv1.DimensionScore {
		return &truegpuv1.DimensionScore{ScoreBp: uint32(r.between(lo, hi)), ConfidenceBp: uint32(r.between(clo, chi))}
	}
	ev := func(k int) *truegpuv1.Evidence {
		c := history[k]
		return &truegpuv1.Evidence{ChallengeId: c.ChallengeId, AppliedIndex: 48000 + uint64(r.between(1, 200)), AtUnixMs: c.IssuedAtUnixMs + 1200}
	}
	switch a.story {
	case "honest":
		n.Dimensions = &truegpuv1.Dimensions{
			Identity: dim(9700, 10000, 9000, 9900), Capacity: dim(8800, 9900, 8500, 9800),
			Liveness: dim(9200, 10000, 8800, 9900), Correctness: dim(9800, 10000, 9000, 9900),
		}
	case "new":
		n.Dimensions = &truegpuv1.Dimensions{
			Identity: dim(8000, 9500, 1500, 3500), Capacity: dim(6000, 9000, 800, 2500),
			Liveness: dim(7000, 9500, 800, 2500), Correctness: dim(8000, 10000, 800, 2500),
		}
		n.Reasons = []*truegpuv1.Reason{{Code: "EVIDENCE_INSUFFICIENT",
			Detail:   fmt.Sprintf("%d challenges so far; trust needs at least 10 accepted across all dimensions", counters.Issued),
			Evidence: []*truegpuv1.Evidence{ev(0)}}}
	case "flaky":
		n.Dimensions = &truegpuv1.Dimensions{
			Identity: dim(9000, 9900, 8000, 9500), Capacity: dim(7500, 9000, 7000, 9000),
			Liveness: dim(2500, 4500, 8000, 9500), Correctness: dim(9500, 10000, 8000, 9500),
		}
		n.Reasons = []*truegpuv1.Reason{
			{Code: "LIVENESS_MISSED", Detail: "4 of the last 14 challenges got no commitment before the deadline",
				Evidence: []*truegpuv1.Evidence{ev(1), ev(4), ev(7), ev(10)}},
			{Code: "DIMENSION_FAILING", Detail: "liveness is below the suspect threshold of 50.00%"},
		}
	case "fake-class":
		n.Dimensions = &truegpuv1.Dimensions{
			Identity: dim(6000, 8000, 7000, 9000), Capacity: dim(0, 900, 9000, 9900),
			Liveness: dim(8000, 9500, 8000, 9500), Correctness: dim(9000, 10000, 8000, 9500),
		}
		n.Reasons = []*truegpuv1.Reason{
			{Code: "CAPACITY_SLOW", Detail: fmt.Sprintf("commitments take %d–%d ms against %d ms expected for a %s: the device is not the claimed class",
				ci.expectedMs*33/10, ci.expectedMs*46/10, ci.expectedMs, a.class),
				Evidence: []*truegpuv1.Evidence{ev(0), ev(1), ev(2)}},
			{Code: "COMMITMENT_LATE", Detail: "14 of the last 14 commitments arrived after the deadline",
				Evidence: []*truegpuv1.Evidence{ev(3), ev(4)}},
			{Code: "IDENTITY_FINGERPRINT_CHANGED", Detail: "the reported product name is not a " + a.class},
		}
	case "duplicate":
		n.Dimensions = &truegpuv1.Dimensions{
			Identity: dim(0, 0, 9500, 9900), Capacity: dim(8000, 9500, 7000, 9000),
			Liveness: dim(8500, 9800, 7000, 9000), Correctness: dim(9500, 10000, 7000, 9000),
		}
		n.Reasons = []*truegpuv1.Reason{{Code: "IDENTITY_DUPLICATE", Evidence: []*truegpuv1.Evidence{ev(2)}}}
	case "bad-proof":
		n.Dimensions = &truegpuv1.Dimensions{
			Identity: dim(9000, 9800, 8000, 9500), Capacity: dim(8500, 9500, 8000, 9500),
			Liveness: dim(9000, 9900, 8000, 9500), Correctness: dim(0, 500, 9500, 9900),
		}
		n.Reasons = []*truegpuv1.Reason{{Code: "PROOF_INVALID",
			Detail:   "5 proofs failed Groth16 verification: the sampled cells do not match the seeded GEMM",
			Evidence: []*truegpuv1.Evidence{ev(0), ev(1), ev(2), ev(3), ev(4)}}}
	}
	d := n.Dimensions
	score := (uint64(d.Identity.ScoreBp) + uint64(d.Capacity.ScoreBp) + uint64(d.Liveness.ScoreBp) + uint64(d.Correctness.ScoreBp)) / 4
	if a.status == truegpuv1.NodeStatus_NODE_STATUS_REJECTED {
		score = min(score, r.between(0, 2400))
	}
	n.ScoreBp = uint32(score)
	return n
}

func genFleet(base int64) *truegpuv1.GetFleetStatsResponse {
	r := &rng{seed: []byte("apitest-fleet")}
	f := &truegpuv1.GetFleetStatsResponse{}
	const buckets = 24
	nodes := uint32(4)
	var verdicts uint64
	for i := range buckets {
		at := base - int64(buckets-i)*3_600_000
		p := &truegpuv1.TimelinePoint{AtUnixMs: at}
		if i < 20 {
			nodes += uint32(r.between(0, 2))
		} else {
			nodes = NumNodes
		}
		p.Nodes = nodes
		p.Accepted = uint32(r.between(60, 140) * uint64(nodes) / 10)
		switch i {
		case 6, 7:
			p.Rejected = 2 // a wave of fake H100s caught by their timings
		case 15:
			p.Rejected = 1
		case 19:
			p.Rejected = 1
		}
		if i%5 == 3 {
			p.Suspect = uint32(r.between(1, 2))
		}
		verdicts += uint64(p.Accepted + p.Rejected)
		f.Timeline = append(f.Timeline, p)
	}
	f.TotalVerdicts = verdicts + 91_422
	return f
}

// MemberKey returns the deterministic report-signing key of fixture member i
// (1-based).
func MemberKey(i int) *ethcrypto.PrivateKey {
	return ethcrypto.KeyFromSeed(fmt.Appendf(nil, "apitest-member-%d", i))
}

func genCluster(base int64, nodes int) (*truegpuv1.GetClusterResponse, map[uint64]*truegpuv1.EpochReport) {
	c := &truegpuv1.GetClusterResponse{
		LeaderId: "oracle-1", Term: 3, CommitIndex: 48213, AppliedIndex: 48213,
		CurrentEpoch: 43, LastCompleteEpoch: 42, ReportThreshold: 2, ServedBy: ServedBy, NodeCount: uint32(nodes),
	}
	var signers []string
	for i := 1; i <= 3; i++ {
		signer := MemberKey(i).Address().String()
		signers = append(signers, signer)
		c.Members = append(c.Members, &truegpuv1.Member{
			Id:            fmt.Sprintf("oracle-%d", i),
			RaftAddress:   fmt.Sprintf("10.0.0.%d:7000", 10+i),
			GrpcAddress:   fmt.Sprintf("10.0.0.%d:9090", 10+i),
			HttpAddress:   fmt.Sprintf("10.0.0.%d:8080", 10+i),
			SignerAddress: signer,
			Suffrage:      "voter",
			Leader:        i == 1,
		})
	}
	slices.SortFunc(signers, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	reports := map[uint64]*truegpuv1.EpochReport{}
	for epoch, nsig := range map[uint64]int{41: 3, 42: 2, 43: 1} {
		cfg := ethcrypto.Keccak256([]byte("apitest-config"), []byte{3, 2})
		root := ethcrypto.Keccak256([]byte("apitest-root"), []byte{byte(epoch)})
		digest := ethcrypto.Keccak256([]byte("apitest-report"), cfg[:], root[:], []byte{byte(epoch)})
		rep := &truegpuv1.EpochReport{
			Epoch: epoch, Round: 0,
			Timestamp:    uint64(base/1000) - (43-epoch)*3600 - 60,
			ConfigDigest: cfg[:], Root: root[:], Count: uint64(nodes), Digest: digest[:],
			Domain:    &truegpuv1.Eip712Domain{Name: "TrueGPU", Version: "1", ChainId: 8453, VerifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
			Threshold: 2, Signers: signers, Complete: nsig >= 2,
		}
		for i := 1; i <= nsig; i++ {
			sig, err := MemberKey(i).SignHash(digest)
			if err != nil {
				panic("apitest: sign fixture report: " + err.Error())
			}
			rep.Signatures = append(rep.Signatures, &truegpuv1.MemberSignature{
				MemberId: fmt.Sprintf("oracle-%d", i), SignerAddress: MemberKey(i).Address().String(), Signature: sig[:],
			})
		}
		slices.SortFunc(rep.Signatures, func(a, b *truegpuv1.MemberSignature) int {
			return strings.Compare(strings.ToLower(a.SignerAddress), strings.ToLower(b.SignerAddress))
		})
		reports[epoch] = rep
	}
	return c, reports
}
