package devcluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"google.golang.org/protobuf/proto"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

func benchCluster(b *testing.B) *Cluster {
	b.Helper()
	oracle.TuneGC() // as oracled does
	var pc oracle.PipelineConfig
	envInt("TRUEGPU_BENCH_WORKERS", &pc.Workers)
	envInt("TRUEGPU_BENCH_MAXBATCH", &pc.MaxBatch)
	pc.RatePerNode = 1000
	c, err := Start(context.Background(), Options{Pipeline: pc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", EpochInterval: time.Hour,
		ChallengeInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLog: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func benchNodeKey(i int) *attest.NodeKey {
	return attest.NodeKeyFromSeed([]byte(fmt.Sprintf("bench node %d", i)))
}

// registerDirect registers n nodes by proposing their signed registrations
// on the leader (the pipeline's checks are not what these benchmarks
// measure; Apply still checks the signatures).
func registerDirect(b *testing.B, m *oracle.Member, n int) []ethcrypto.Address {
	b.Helper()
	addrs, err := RegisterNodes(context.Background(), m, n, 0, benchNodeKey, func(i int) []*truegpuv1.Device {
		return []*truegpuv1.Device{{ClaimedClass: "H100-SXM", Fingerprint: &truegpuv1.DeviceFingerprint{Uuid: fmt.Sprintf("GPU-bench-%d", i)}}}
	})
	if err != nil {
		b.Fatal(err)
	}
	return addrs
}

func challengeFor(a ethcrypto.Address, nonce [32]byte, now time.Time, p *prover.Profile) *truegpuv1.IssuedChallenge {
	return SyntheticChallenge(a, nonce, now, p, "H100-SXM")
}

// BenchmarkClusterCommit measures commands committed and applied per
// second on a 3-member loopback cluster (TCP transport, Pebble log and
// state): 2048 concurrent proposers, each command one challenge issue,
// coalesced by the proposer into batch entries.
func BenchmarkClusterCommit(b *testing.B) {
	c := benchCluster(b)
	l := c.Leader().Member
	addrs := registerDirect(b, l, 1024)
	// The commands are built before the clock starts: the benchmark
	// measures the cluster, not the load generator's nonces and ids.
	cmds := make([]*truegpuv1.Command, b.N)
	now := time.Now()
	for i := range cmds {
		var nonce [32]byte
		rand.Read(nonce[:])
		ch := challengeFor(addrs[i%len(addrs)], nonce, now.Add(time.Duration(i)*time.Microsecond), c.Profile)
		cmds[i] = &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}}}
	}
	var next atomic.Int64
	b.ResetTimer()
	defer startProfile(b)()
	start := time.Now()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	const workers = 2048
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := l.Propose(context.Background(), cmds[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commands/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/time.Since(start).Seconds(), "cpus")
}

// proofCache keeps benchmark proofs across runs (proving is slow; the
// dev keys and the challenges are deterministic, so proofs stay valid).
type cachedProof struct {
	Nonce [32]byte
	Node  int
	Root  [32]byte
	Seed  [16]byte
	Proof []byte
}

func benchProofs(b testing.TB, p *prover.Profile, pk *prover.ProvingKey, n int) []cachedProof {
	b.Helper()
	d := p.Digest()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("truegpu-bench-proofs-%x-%d-%d.gob", d[:6], verifier.ProofSize, n))
	if f, err := os.Open(path); err == nil {
		var out []cachedProof
		err := gob.NewDecoder(f).Decode(&out)
		f.Close()
		if err == nil && len(out) == n && len(out[0].Proof) == verifier.ProofSize {
			return out
		}
	}
	out := make([]cachedProof, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var nonce [32]byte
			copy(nonce[:], fmt.Sprintf("bench nonce %d", i))
			key := benchNodeKey(i)
			var seed prover.SampleSeed
			copy(seed[:], fmt.Sprintf("bench seed %d", i))
			proof, root, err := prover.Prove(pk, p, prover.Nonce(nonce), key.ProverAddress(), seed, prover.Compute(p, prover.Nonce(nonce)))
			if err != nil {
				b.Error(err)
				return
			}
			out[i] = cachedProof{nonce, i, root, seed, proof}
		}()
	}
	wg.Wait()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(out); err == nil {
		os.WriteFile(path, buf.Bytes(), 0o600)
	}
	return out
}

// BenchmarkAttestationsE2E measures verified attestations per second on a
// 3-member loopback cluster: signed proof submissions over gRPC to the
// leader, each checked (signature, registration, rate limit, size, nonce
// state, deadline), batch-verified with Groth16, and its verdict replicated
// and applied. One op is one attestation.
func BenchmarkAttestationsE2E(b *testing.B) {
	n := 256 // proofs per burst; TRUEGPU_BENCH_PROOFS overrides
	envInt("TRUEGPU_BENCH_PROOFS", &n)
	p, _ := prover.ProfileByName("test")
	pk, _, err := prover.UnsafeDevKeys(p, "")
	if err != nil {
		b.Fatal(err)
	}
	proofs := benchProofs(b, p, pk, n)
	var total int
	var elapsed, cpu time.Duration
	for total < b.N {
		b.StopTimer()
		c := benchCluster(b)
		l := c.Leader()
		registerDirect(b, l.Member, n)
		now := time.Now()
		reqs := make([]*truegpuv1.SubmitProofRequest, n)
		for i, cp := range proofs {
			key := benchNodeKey(cp.Node)
			ch := challengeFor(key.Address(), cp.Nonce, now, p)
			creq := &truegpuv1.SubmitCommitmentRequest{ChallengeId: truegpuv1.FormatChallengeID(ch.Id), Address: key.Address().String(), Root: cp.Root[:]}
			if err := key.Sign(creq); err != nil {
				b.Fatal(err)
			}
			signed, err := proto.MarshalOptions{Deterministic: true}.Marshal(creq)
			if err != nil {
				b.Fatal(err)
			}
			for _, cmd := range []*truegpuv1.Command{
				{Body: &truegpuv1.Command_IssueChallenges{IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}}},
				{Body: &truegpuv1.Command_RecordCommitment{RecordCommitment: &truegpuv1.RecordCommitmentCommand{ChallengeId: ch.Id, Root: cp.Root[:], ReceivedAtUnixMs: now.UnixMilli() + 1, SampleSeed: cp.Seed[:], SignedRequest: signed}}},
			} {
				if _, err := l.Member.Propose(context.Background(), cmd); err != nil {
					b.Fatal(err)
				}
			}
			reqs[i] = &truegpuv1.SubmitProofRequest{ChallengeId: truegpuv1.FormatChallengeID(ch.Id), Address: key.Address().String(), Proof: cp.Proof}
			if err := key.Sign(reqs[i]); err != nil {
				b.Fatal(err)
			}
		}
		cc, err := grpcClient(l.GRPCAddr)
		if err != nil {
			b.Fatal(err)
		}
		client := truegpuv1.NewNodeServiceClient(cc)
		b.StartTimer()
		stopProfile := startProfile(b)
		start := time.Now()
		cpu0 := cpuTime()
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for _, r := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.SubmitProof(context.Background(), r)
				if err != nil {
					b.Error(err)
					return
				}
				if resp.Verdict.Accepted {
					accepted.Add(1)
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		stopProfile()
		cc.Close()
		if accepted.Load() != int64(n) {
			b.Fatalf("%d of %d proofs accepted", accepted.Load(), n)
		}
		total += n
		c.Close()
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "attestations/s")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpus")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRESTGetNode measures GET /v1/nodes/{address} (stale read) on one
// member of a 3-member cluster over loopback HTTP with 16 concurrent keep-
// alive connections (TRUEGPU_BENCH_CLIENTS), reporting requests per second
// and the p99 latency. The load generator shares the two cores with the
// cluster, so it is a lean HTTP/1.1 client (one goroutine per connection,
// requests built in advance, responses checked for status 200 and read to
// the end), in the manner of wrk; net/http's client costs about a quarter
// of the CPU such a run has.
func BenchmarkRESTGetNode(b *testing.B) {
	c := benchCluster(b)
	addrs := registerDirect(b, c.Leader().Member, 1000)
	n := c.Nodes[0]
	for n.Member.FSM().AppliedIndex() < c.Leader().Member.FSM().AppliedIndex() {
		time.Sleep(10 * time.Millisecond)
	}
	host := strings.TrimPrefix(n.HTTPURL(), "http://")
	// One response read in full through net/http: what the lean client
	// counts is the real thing.
	resp, err := http.Get(n.HTTPURL() + "/v1/nodes/" + addrs[0].String())
	if err != nil {
		b.Fatal(err)
	}
	var got struct {
		Node struct{ Address string } `json:"node"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || got.Node.Address != addrs[0].String() {
		b.Fatalf("GET node: status %d, address %q, %v", resp.StatusCode, got.Node.Address, err)
	}
	reqs := make([][]byte, len(addrs))
	for i, a := range addrs {
		reqs[i] = []byte("GET /v1/nodes/" + a.String() + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	}
	clients := 16
	envInt("TRUEGPU_BENCH_CLIENTS", &clients)
	conns := make([]net.Conn, clients)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", host); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	var mu sync.Mutex
	var lat []time.Duration
	var idx atomic.Int64
	b.ResetTimer()
	defer startProfile(b)()
	start := time.Now()
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(conn, 16<<10)
			var mine []time.Duration
			for {
				i := idx.Add(1) - 1
				if i >= int64(b.N) {
					break
				}
				t0 := time.Now()
				if _, err := conn.Write(reqs[i%int64(len(reqs))]); err != nil {
					b.Error(err)
					return
				}
				if err := readOK(br); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	}
}

// readOK reads one HTTP/1.1 response with a Content-Length body and
// requires status 200.
func readOK(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("response %q", bytes.TrimSpace(line))
	}
	length := -1
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(h) <= 2 { // the blank line
			break
		}
		if name, v, ok := bytes.Cut(h, []byte(":")); ok && strings.EqualFold(string(name), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return fmt.Errorf("content length %q", v)
			}
		}
	}
	if length <= 0 {
		return errors.New("response without a Content-Length body")
	}
	_, err = br.Discard(length)
	return err
}

func grpcClient(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startProfile writes a CPU profile of the measured part of a benchmark to
// the file named by TRUEGPU_BENCH_CPUPROFILE: the first measured part of
// more than one op only (go test's -cpuprofile would include the cluster's
// start and setup).
func startProfile(b *testing.B) (stop func()) {
	path := os.Getenv("TRUEGPU_BENCH_CPUPROFILE")
	if path == "" || b.N == 1 || profiled.Swap(true) { // N=1 is go test's probe run
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

var profiled atomic.Bool

// envInt sets *v from the environment variable name when it is set.
func envInt(name string, v *int) {
	if s := os.Getenv(name); s != "" {
		fmt.Sscan(s, v)
	}
}
