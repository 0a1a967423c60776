package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		args  []string
		class string
	}{
		{[]string{"--device", "cpu"}, gpuclass.CPU},
		{[]string{"--device", "sim:h100", "--sim-seed", "s1"}, gpuclass.H100SXM},
		{[]string{"--device", "sim:rtx3090-as-a100", "--sim-seed", "s1"}, gpuclass.A100_80},
		{[]string{"--device", "sim:cpu", "--class", "cpu"}, gpuclass.CPU},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runCLI(t, context.Background(), append([]string{"fingerprint"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var got []deviceJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if len(got) != 1 || got[0].ClaimedClass != tc.class || got[0].Fingerprint.UUID == "" || len(got[0].Digest) != 64 {
				t.Fatalf("fingerprint output %+v, want one device of class %s", got, tc.class)
			}
		})
	}
	_, a, _ := runCLI(t, context.Background(), "fingerprint", "--device", "sim:clone-h100", "--sim-seed", "same")
	_, b, _ := runCLI(t, context.Background(), "fingerprint", "--device", "sim:clone-h100", "--sim-seed", "same")
	if a != b {
		t.Fatal("two clones with one seed printed different fingerprints")
	}
}

// Without NVIDIA's libraries the GPU backends fail plainly and offer the
// CPU backend.
func TestNoGPUBackends(t *testing.T) {
	for _, dev := range []string{"nvml", "cuda"} {
		t.Run(dev, func(t *testing.T) {
			code, out, errs := runCLI(t, context.Background(), "fingerprint", "--device", dev)
			if code == 0 {
				t.Skipf("a GPU is present: %s", out)
			}
			if code != 1 || !strings.Contains(errs, "--device cpu") {
				t.Fatalf("exit %d, stderr %q; want exit 1 offering --device cpu", code, errs)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"fingerprint", "--device", "tpu"}, "unknown --device"},
		{[]string{"fingerprint", "--device", "sim:"}, "needs a profile"},
		{[]string{"fingerprint", "--device", "sim:b300"}, "known classes"},
		{[]string{"run", "--key", "KEY", "--create-key", "--dev-keys"}, "--oracle is required"},
		{[]string{"run", "--oracle", "127.0.0.1:1", "--create-key", "--key", "KEY"}, "no proving keys"},
		{[]string{"run", "--oracle", "127.0.0.1:1", "--create-key", "--key", "KEY", "--proving-key", "standard"}, "PROFILE=FILE"},
		{[]string{"run", "--oracle", "127.0.0.1:1", "--key", "missing.key", "--dev-keys"}, "attestor keygen"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "KEY", filepath.Join(dir, "k.key"))
				if a == "missing.key" {
					args[i] = filepath.Join(dir, a)
				}
			}
			code, _, errs := runCLI(t, context.Background(), args...)
			if code == 0 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want failure mentioning %q", code, errs, tc.want)
			}
			if tc.want == "--oracle is required" {
				if _, err := os.Stat(filepath.Join(dir, "k.key")); !os.IsNotExist(err) {
					t.Fatalf("a usage error left a key file behind (stat: %v)", err)
				}
			}
		})
	}
}

func TestKeygenAndAddress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.key")
	code, out, errs := runCLI(t, context.Background(), "keygen", "--key", path)
	if code != 0 {
		t.Fatalf("keygen: %s", errs)
	}
	addr, err := ethcrypto.ParseAddress(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("keygen printed %q: %v", out, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	_, out2, _ := runCLI(t, context.Background(), "address", "--key", path)
	if strings.TrimSpace(out2) != addr.String() {
		t.Fatalf("address %q, keygen %q", out2, out)
	}
	if code, _, errs := runCLI(t, context.Background(), "keygen", "--key", path); code != 1 || !strings.Contains(errs, "already exists") {
		t.Fatalf("second keygen: exit %d, %s", code, errs)
	}
}

// registrar is a NodeService that accepts registrations and holds
// challenge streams open.
type registrar struct {
	truegpuv1.UnimplementedNodeServiceServer
	registered chan *truegpuv1.RegisterNodeRequest
}

func (r *registrar) RegisterNode(ctx context.Context, req *truegpuv1.RegisterNodeRequest) (*truegpuv1.RegisterNodeResponse, error) {
	addr, _ := ethcrypto.ParseAddress(req.GetAddress())
	if ok, err := attest.VerifySignature(req, addr); !ok || err != nil {
		return nil, err
	}
	r.registered <- req
	return &truegpuv1.RegisterNodeResponse{Address: req.GetAddress(), Status: truegpuv1.NodeStatus_NODE_STATUS_PROBATION}, nil
}

func (r *registrar) StreamChallenges(req *truegpuv1.StreamChallengesRequest, srv grpc.ServerStreamingServer[truegpuv1.StreamChallengesResponse]) error {
	<-srv.Context().Done()
	return nil
}

func (r *registrar) PollChallenges(ctx context.Context, req *truegpuv1.PollChallengesRequest) (*truegpuv1.PollChallengesResponse, error) {
	return &truegpuv1.PollChallengesResponse{}, nil
}

func startRegistrar(t *testing.T) (*registrar, string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &registrar{registered: make(chan *truegpuv1.RegisterNodeRequest, 4)}
	srv := grpc.NewServer()
	truegpuv1.RegisterNodeServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r, lis.Addr().String()
}

func TestRegisterAndGracefulShutdown(t *testing.T) {
	r, addr := startRegistrar(t)
	key := filepath.Join(t.TempDir(), "node.key")
	code, out, errs := runCLI(t, context.Background(), "register", "--oracle", addr, "--insecure", "--key", key, "--create-key", "--device", "sim:a100")
	if code != 0 {
		t.Fatalf("register: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "NODE_STATUS_PROBATION") {
		t.Errorf("register printed %q", out)
	}
	req := <-r.registered
	if d := req.GetDevices(); len(d) != 1 || d[0].GetClaimedClass() != gpuclass.A100_80 || d[0].GetFingerprint().GetName() != "NVIDIA A100-SXM4-80GB" {
		t.Errorf("registered devices %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"run", "--oracle", addr, "--insecure", "--key", key, "--device", "cpu", "--dev-keys"}, &bytes.Buffer{}, &errb)
	}()
	select {
	case <-r.registered:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not register within 30s")
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run exited %d after interrupt: %s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not shut down within 30s of the interrupt")
	}
	if !strings.Contains(errb.String(), "shutting down") {
		t.Errorf("no shutdown message in %q", errb.String())
	}
}

func TestSelftest(t *testing.T) {
	tests := []struct {
		device  string
		code    int
		matches bool
	}{
		{"cpu", 0, true},
		{"sim:h100", 0, true},
		{"sim:garbage-h100", 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.device, func(t *testing.T) {
			code, out, errs := runCLI(t, context.Background(), "selftest", "--device", tc.device, "--profile", "test", "--runs", "2")
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errs)
			}
			var res []selftestResult
			if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
				t.Fatalf("output %q: %v", out, err)
			}
			r := res[0]
			if r.MatchesRef != tc.matches || r.Runs != 2 || r.Profile != "test/v2" || r.DeadlineMillis == 0 {
				t.Errorf("result %+v", r)
			}
		})
	}
}

// TestSelftestTimed runs the class-sized timed phase on the CPU backend
// (a small target, so it finishes in a second), checks its openings the
// way the oracle does, and reports its time against the timed deadline.
func TestSelftestTimed(t *testing.T) {
	code, out, errs := runCLI(t, context.Background(), "selftest", "--device", "cpu", "--profile", "test", "--runs", "1", "--timed-target", "200")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res []selftestResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
		t.Fatalf("output %q: %v", out, err)
	}
	tr := res[0].Timed
	if tr == nil || !tr.OpeningsCheck || tr.Dims == "" || tr.DeadlineMillis <= tr.ExpectedMillis {
		t.Fatalf("timed result %+v", tr)
	}
	t.Logf("cpu timed phase %s: %.0f ms against a %d ms deadline (expected %d ms)", tr.Dims, tr.MedianMillis, tr.DeadlineMillis, tr.ExpectedMillis)
}

// TestSelftestMemory runs the class-sized memory phase on the CPU backend
// (a small walk target), checks the walk's openings the way the oracle
// does, and reports the walk's time against its deadline.
func TestSelftestMemory(t *testing.T) {
	code, out, errs := runCLI(t, context.Background(), "selftest", "--device", "cpu", "--profile", "test", "--runs", "1", "--memory-target", "200")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res []selftestResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 {
		t.Fatalf("output %q: %v", out, err)
	}
	mr := res[0].Memory
	if mr == nil || !mr.OpeningsCheck || mr.Dims == "" || mr.DeadlineMillis <= mr.ExpectedMillis || mr.MedianMillis <= 0 {
		t.Fatalf("memory result %+v", mr)
	}
	t.Logf("cpu memory phase %s: walk %.0f ms against a %d ms deadline (expected %d ms)", mr.Dims, mr.MedianMillis, mr.DeadlineMillis, mr.ExpectedMillis)
}
