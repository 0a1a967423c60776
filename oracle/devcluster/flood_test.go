package devcluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestRegistrationFlood floods a running three-member cluster (loopback,
// one process) with signed registrations of distinct new addresses while
// honest simulated nodes answer their challenges and a reader polls
// one of them over REST. It reports what was admitted per second, how the
// state grew, the honest nodes' verdict latency and the REST latency
// during the flood. It runs only when TRUEGPU_FLOOD names the number of
// registrations (BENCHMARKS.md has the command and the figures):
//
//	TRUEGPU_FLOOD=100000 go test ./oracle/devcluster -run TestRegistrationFlood -v -timeout 30m
//
// TRUEGPU_FLOOD_RATE and TRUEGPU_FLOOD_BURST set the cluster's admission
// budget (default the oracled defaults); TRUEGPU_FLOOD_WORKERS the
// flooding connections (default 8); TRUEGPU_FLOOD_HONEST the honest
// nodes (default 2); TRUEGPU_FLOOD_INTERVAL the challenge
// interval (default 60s: admitted flood nodes are challenged too, and never
// answer).
func TestRegistrationFlood(t *testing.T) {
	total, _ := strconv.Atoi(os.Getenv("TRUEGPU_FLOOD"))
	if total <= 0 {
		t.Skip("set TRUEGPU_FLOOD to the number of registrations to run the flood measurement")
	}
	rate, burst := float64(oracle.DefaultNewNodesPerSecond), oracle.DefaultNewNodeBurst
	if v, err := strconv.ParseFloat(os.Getenv("TRUEGPU_FLOOD_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	envIntT("TRUEGPU_FLOOD_BURST", &burst)
	workers := 8
	envIntT("TRUEGPU_FLOOD_WORKERS", &workers)
	interval := time.Minute
	honestN := 2
	envIntT("TRUEGPU_FLOOD_HONEST", &honestN)
	if v, err := time.ParseDuration(os.Getenv("TRUEGPU_FLOOD_INTERVAL")); err == nil && v > 0 {
		interval = v
	}
	oracle.TuneGC()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Start(ctx, Options{
		Dir: dir, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		EpochInterval: time.Minute, ChallengeInterval: interval, ProofWindow: time.Minute,
		Admission: func() oracle.Admission { return &oracle.RegistrationBudget{PerSecond: rate, Burst: burst} },
		Fleet:     FleetOptions{Honest: honestN, HonestClasses: []string{"h100"}, TimeScale: DefaultTimeScale},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leader, err := c.WaitLeader(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var honest []ethcrypto.Address
	for _, n := range c.Fleet.Nodes {
		honest = append(honest, n.Key.Address())
	}
	// Wait for both honest nodes' first accepted verdicts: the cluster runs.
	waitAccepted(t, leader.Member, honest, 1, 2*time.Minute)

	// The flood's requests, signed before the clock starts (signing is the
	// attacker's cost, not the cluster's).
	reqs := make([]*truegpuv1.RegisterNodeRequest, total)
	{
		var wg sync.WaitGroup
		per := (total + runtime.NumCPU() - 1) / runtime.NumCPU()
		for w := 0; w*per < total; w++ {
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				for i := lo; i < hi; i++ {
					k := attest.NodeKeyFromSeed([]byte(fmt.Sprintf("flood node %d", i)))
					req := &truegpuv1.RegisterNodeRequest{Address: k.Address().String(), Cluster: oracle.DefaultClusterID, TimestampUnixMs: time.Now().UnixMilli(),
						Devices: []*truegpuv1.Device{{ClaimedClass: "H100-SXM", Fingerprint: &truegpuv1.DeviceFingerprint{
							Uuid: fmt.Sprintf("GPU-flood-%d", i), Name: "NVIDIA H100 80GB HBM3", MemoryTotalBytes: 80 << 30}}}}
					if err := k.Sign(req); err != nil {
						t.Error(err)
						return
					}
					reqs[i] = req
				}
			}(w*per, min(total, (w+1)*per))
		}
		wg.Wait()
	}

	before := stateSize(t, dir)
	baseAccepted := accepted(t, leader.Member, honest)
	baseIndex := leader.Member.FSM().AppliedIndex()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapInuse

	// A REST reader and the honest nodes' verdict watcher run throughout.
	rctx, rstop := context.WithCancel(ctx)
	var restLat []time.Duration
	var restErrs atomic.Int64
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		restLat = restReader(rctx, c.Nodes[1].HTTPAddr, honest[0], &restErrs)
	}()
	var verdictLat []time.Duration
	go func() {
		defer bg.Done()
		verdictLat = watchVerdicts(rctx, leader.Member, honest)
	}()

	// The flood: workers send the requests over gRPC, spread over the
	// members (followers forward registrations to the leader).
	var ok, refused, failed atomic.Int64
	var next atomic.Int64
	var admittedAt []time.Duration
	var amu sync.Mutex
	start := time.Now()
	// One connection per member, shared by its workers.
	conns := make([]*grpc.ClientConn, len(c.Nodes))
	for i, n := range c.Nodes {
		if conns[i], err = grpc.NewClient(n.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := truegpuv1.NewNodeServiceClient(conns[w%len(conns)])
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				_, err := cl.RegisterNode(ctx, reqs[i])
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
					amu.Lock()
					admittedAt = append(admittedAt, time.Since(start))
					amu.Unlock()
				case codes.ResourceExhausted:
					refused.Add(1)
				default:
					if failed.Add(1) <= 3 {
						t.Logf("registration %d: %v", i, err)
					}
				}
			}
		}()
	}
	progress := time.NewTicker(15 * time.Second)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-progress.C:
				t.Logf("%s: %d sent, %d admitted, %d refused, %d other", time.Since(start).Round(time.Second), min(next.Load(), int64(total)), ok.Load(), refused.Load(), failed.Load())
			}
		}
	}()
	wg.Wait()
	close(done)
	progress.Stop()
	floodTime := time.Since(start)
	// Keep measuring for a while after the flood: the honest nodes'
	// challenges continue.
	time.Sleep(min(2*interval, 30*time.Second))
	rstop()
	bg.Wait()
	for leader.Member.FSM().AppliedIndex() < c.Leader().Member.FSM().AppliedIndex() {
		time.Sleep(10 * time.Millisecond)
	}
	after := stateSize(t, dir)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapAfter := ms.HeapInuse
	acceptedDuring := accepted(t, leader.Member, honest) - baseAccepted

	slices.Sort(restLat)
	slices.Sort(verdictLat)
	meta, _ := leader.Member.FSM().Meta()
	t.Logf("flood: %d registrations from %d connections in %.1f s (%.0f/s offered); admission budget %.0f/s, burst %d",
		total, workers, floodTime.Seconds(), float64(total)/floodTime.Seconds(), rate, burst)
	t.Logf("admitted: %d (%.1f/s over the flood; %d in its first second), refused before Raft: %d, other errors: %d",
		ok.Load(), float64(ok.Load())/floodTime.Seconds(), countBefore(admittedAt, time.Second), refused.Load(), failed.Load())
	t.Logf("registered nodes now: %d; log entries applied during the run: %d", meta.GetNodeCount(), leader.Member.FSM().AppliedIndex()-baseIndex)
	t.Logf("state on disk (3 members): %.1f MiB -> %.1f MiB; process heap in use %.1f MiB -> %.1f MiB",
		mib(before), mib(after), mib(int64(heapBefore)), mib(int64(heapAfter)))
	t.Logf("honest nodes: %d accepted verdicts during the flood and %s after it; verdict latency (issue to accepted verdict) p50 %s p99 %s max %s",
		acceptedDuring, min(2*interval, 30*time.Second), pct(verdictLat, 50), pct(verdictLat, 99), pct(verdictLat, 100))
	t.Logf("REST GET /v1/nodes/{honest} on a follower during the flood: %d requests, %d errors, p50 %s p99 %s max %s",
		len(restLat), restErrs.Load(), pct(restLat, 50), pct(restLat, 99), pct(restLat, 100))
	if e := firstRESTErr.Load(); e != nil {
		t.Logf("first REST error: %v", e)
	}
	if acceptedDuring == 0 {
		t.Errorf("the honest nodes got no accepted verdict during the flood")
	}
}

var firstRESTErr atomic.Value

func envIntT(name string, v *int) {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		*v = n
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "n/a"
	}
	i := min(len(d)-1, len(d)*p/100)
	return d[i].Round(100 * time.Microsecond).String()
}

func countBefore(d []time.Duration, limit time.Duration) int {
	n := 0
	for _, x := range d {
		if x < limit {
			n++
		}
	}
	return n
}

// stateSize sums the members' data directories.
func stateSize(t *testing.T, dir string) int64 {
	n, err := DirSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func accepted(t *testing.T, m *oracle.Member, nodes []ethcrypto.Address) int64 {
	var n int64
	for _, a := range nodes {
		rec, err := m.FSM().Node(a)
		if err != nil {
			t.Fatal(err)
		}
		n += int64(rec.GetCounters().GetAccepted())
	}
	return n
}

func waitAccepted(t *testing.T, m *oracle.Member, nodes []ethcrypto.Address, each uint64, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		done := true
		for _, a := range nodes {
			rec, err := m.FSM().Node(a)
			if err != nil || rec.GetCounters().GetAccepted() < each {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("honest nodes without %d accepted verdicts after %s", each, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watchVerdicts polls the honest nodes' challenge histories on m and
// returns, for each challenge first seen accepted, the time from its issue
// to when it was seen (polled every 50 ms).
func watchVerdicts(ctx context.Context, m *oracle.Member, nodes []ethcrypto.Address) []time.Duration {
	seen := map[string]bool{}
	var out []time.Duration
	first := true
	for {
		for _, a := range nodes {
			recent, _, err := m.FSM().ChallengeHistory(a, 32)
			if err != nil {
				continue
			}
			for _, r := range recent {
				if r.Outcome != "accepted" || seen[r.ChallengeId] {
					continue
				}
				seen[r.ChallengeId] = true
				if !first {
					out = append(out, time.Since(time.UnixMilli(r.IssuedAtUnixMs)))
				}
			}
		}
		first = false
		select {
		case <-ctx.Done():
			return out
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// restReader reads one node over REST (net/http, one keep-alive
// connection), one request at a time, every 10 ms, and returns the
// latencies of the successful reads.
func restReader(ctx context.Context, host string, node ethcrypto.Address, errs *atomic.Int64) []time.Duration {
	var out []time.Duration
	cl := &http.Client{Timeout: 30 * time.Second}
	url := "http://" + host + "/v1/nodes/" + node.String()
	for ctx.Err() == nil {
		t0 := time.Now()
		resp, err := cl.Get(url)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		if err != nil {
			if errs.Add(1) == 1 {
				firstRESTErr.Store(err.Error())
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		out = append(out, time.Since(t0))
		time.Sleep(10 * time.Millisecond)
	}
	return out
}
