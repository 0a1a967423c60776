package main

// quickstart: a real three-process cluster on loopback with mutual TLS and
// an attestor, from one command.

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/membertls"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// quickstartMembers are the member ids the quickstart runs.
var quickstartMembers = []string{"member-1", "member-2", "member-3"}

type quickstartOptions struct {
	dir       string
	bin       string
	basePort  int
	epoch     time.Duration
	interval  time.Duration
	profile   string
	device    string
	timeScale float64
	until     string
	timeout   time.Duration
	// chainID and feedContract: the feed the members sign for; none
	// (-feed-no-chain) when feedContract is empty.
	chainID      uint64
	feedContract string
}

func init() {
	var o quickstartOptions
	register(&command{
		Name:  "quickstart",
		Usage: "[--dir DIR] [--bin DIR] [flags]",
		Short: "run a three-member cluster as separate processes with mutual TLS, and an attestor",
		Long: `
Quickstart runs what an operator sets up by hand, on one machine: it creates
a certificate authority and a certificate per member (subject common name and
DNS name = the member id), a report-signing key per member, starts three
oracled processes on loopback with mutual TLS (member-1 bootstraps, the
others join through it), and an attestor process with a simulated H100 that
registers a node and answers challenges. It prints where everything is and
the commands to try, then runs until Ctrl-C, when it stops the processes.

Everything lives under --dir: pki/ (ca.pem, ca-key.pem, <member>.pem,
<member>-key.pem), <member>/ (signer.key, data/), attestor/node.key and
logs/<process>.log. Running it again reuses the certificates, keys and data.

Member i (1..3) listens on 127.0.0.1: Raft BASE+i, gRPC BASE+100+i (TLS),
REST and dashboard BASE+200+i (plain HTTP on loopback), BASE = --base-port.

The binaries oracled and attestor are looked up in --bin, then beside this
truegpuctl, then on PATH. Build them with
  go build -o bin/ ./cmd/oracled ./cmd/attestor ./cmd/truegpuctl

UNSAFE for production: the Groth16 keys are the deterministic dev setup
(-unsafe-dev-keys) and the CA key sits next to the certificates.

Exit status: 0 after Ctrl-C (or --until reached), 1 if a process failed.`,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.dir, "dir", "truegpu-quickstart", "`directory` for certificates, keys, data and logs")
			fs.StringVar(&o.bin, "bin", "", "`directory` holding the oracled and attestor binaries")
			fs.IntVar(&o.basePort, "base-port", 7100, "first `port` of the range the processes listen on")
			fs.DurationVar(&o.epoch, "epoch", 20*time.Second, "epoch length")
			fs.DurationVar(&o.interval, "challenge-interval", 5*time.Second, "mean time between challenges of a device")
			fs.StringVar(&o.profile, "profile", "test", "workload `profile` (test, demo)")
			fs.StringVar(&o.device, "device", "sim:h100", "attestor device backend (cpu, sim:<profile>, nvml)")
			fs.Float64Var(&o.timeScale, "time-scale", 1, "multiplier of simulated devices' modelled run time (they model the production timed phase's time on their class)")
			fs.StringVar(&o.until, "until", "", "exit 0 once this is reached instead of waiting for Ctrl-C: \"cluster\" (three members, a leader) or \"report\" (the attestor's node has accepted verdicts and a leaf in a complete signed report)")
			fs.DurationVar(&o.timeout, "timeout", 0, "give up (exit 1) if --until is not reached within this `duration` (0: no limit)")
			fs.Uint64Var(&o.chainID, "chain-id", 0, "with --feed-contract: the chain `id` of the feed contract the members sign reports for")
			fs.StringVar(&o.feedContract, "feed-contract", "", "the feed contract's `address` the members sign reports for, so 'truegpuctl feed relay' can submit them (default: reports for no chain)")
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) > 0 {
				return usageError("quickstart takes no arguments, got %q", args)
			}
			switch o.until {
			case "", "cluster", "report":
			default:
				return usageError("--until %q: use cluster or report", o.until)
			}
			if (o.feedContract == "") != (o.chainID == 0) {
				return usageError("--chain-id and --feed-contract go together (the feed contract the members sign for)")
			}
			if o.basePort < 1024 || o.basePort+203 > 65535 {
				return usageError("--base-port %d: use 1024..65332", o.basePort)
			}
			sctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if o.timeout > 0 {
				var cancel context.CancelFunc
				sctx, cancel = context.WithTimeout(sctx, o.timeout)
				defer cancel()
			}
			return quickstart(sctx, ctx.Stdout, o)
		},
	})
}

func (o *quickstartOptions) raftAddr(i int) string { return "127.0.0.1:" + strconv.Itoa(o.basePort+i) }
func (o *quickstartOptions) grpcAddr(i int) string {
	return "127.0.0.1:" + strconv.Itoa(o.basePort+100+i)
}
func (o *quickstartOptions) httpAddr(i int) string {
	return "127.0.0.1:" + strconv.Itoa(o.basePort+200+i)
}

// findBinary looks for name in dir, beside this executable, then on PATH.
func findBinary(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return filepath.Abs(p)
		}
		return "", fmt.Errorf("%s not found in --bin %s; build it with: go build -o %s ./cmd/%s", name, dir, dir, name)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	return "", fmt.Errorf("%s not found beside truegpuctl or on PATH; build the binaries with: go build -o bin/ ./cmd/oracled ./cmd/attestor ./cmd/truegpuctl, then run bin/truegpuctl quickstart (or pass --bin)", name)
}

// quickstartPKI creates (or reuses) the CA, member certificates and signer
// keys under dir.
func quickstartPKI(dir string) error {
	pki := filepath.Join(dir, "pki")
	if _, err := os.Stat(filepath.Join(pki, "ca.pem")); errors.Is(err, os.ErrNotExist) {
		ca, err := devpki.NewCA("truegpu quickstart CA")
		if err != nil {
			return err
		}
		if _, err := ca.WritePEM(pki, quickstartMembers...); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	for _, id := range quickstartMembers {
		if err := os.MkdirAll(filepath.Join(dir, id, "data"), 0o700); err != nil {
			return err
		}
		key := filepath.Join(dir, id, "signer.key")
		if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
			k, err := ethcrypto.GenerateKey()
			if err != nil {
				return err
			}
			if err := ethcrypto.SaveKeyFile(key, k); err != nil {
				return err
			}
		}
	}
	for _, d := range []string{"attestor", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// process is a child process with its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startProcess(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, "logs", name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	fmt.Fprintf(f, "\n== %s %s %s\n", time.Now().UTC().Format(time.RFC3339), bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		f.Close()
	}()
	return p, nil
}

// stop asks the process to end (SIGTERM), then kills it after a grace
// period.
func (p *process) stop() {
	select {
	case err := <-p.done:
		p.done <- err
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		p.done <- <-p.done
	}
}

// logTail returns the last lines of the process's log.
func (p *process) logTail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func quickstart(ctx context.Context, out io.Writer, o quickstartOptions) error {
	oracled, err := findBinary(o.bin, "oracled")
	if err != nil {
		return err
	}
	attestor, err := findBinary(o.bin, "attestor")
	if err != nil {
		return err
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return err
	}
	if err := quickstartPKI(o.dir); err != nil {
		return fmt.Errorf("certificates and keys: %w", err)
	}
	pki := filepath.Join(o.dir, "pki")
	ca := filepath.Join(pki, "ca.pem")
	fmt.Fprintf(out, "quickstart: CA and member certificates in %s; logs in %s\n", pki, filepath.Join(o.dir, "logs"))

	var procs []*process
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop()
		}
		if len(procs) > 0 {
			fmt.Fprintln(out, "quickstart: stopped")
		}
	}()
	// failed reports the first process that exited on its own.
	failed := func() error {
		for _, p := range procs {
			select {
			case err := <-p.done:
				p.done <- err
				return fmt.Errorf("%s exited (%v); the end of %s:\n%s", p.name, err, p.log, p.logTail(15))
			default:
			}
		}
		return nil
	}
	cl, err := quickstartClient(pki)
	if err != nil {
		return err
	}
	for i, id := range quickstartMembers {
		n := i + 1
		args := []string{
			"-node-id", id, "-data-dir", filepath.Join(o.dir, id, "data"),
			"-raft-addr", o.raftAddr(n), "-grpc-addr", o.grpcAddr(n), "-http-addr", o.httpAddr(n),
			"-tls-cert", filepath.Join(pki, id+".pem"), "-tls-key", filepath.Join(pki, id+"-key.pem"), "-tls-ca", ca,
			"-signer-key", filepath.Join(o.dir, id, "signer.key"),
			"-cluster-id", "truegpu-quickstart", "-profile", o.profile, "-unsafe-dev-keys", "-timed-stand-in",
			"-epoch", o.epoch.String(), "-challenge-interval", o.interval.String(),
		}
		if o.feedContract != "" {
			args = append(args, "-chain-id", strconv.FormatUint(o.chainID, 10), "-feed-contract", o.feedContract)
		} else {
			args = append(args, "-feed-no-chain")
		}
		if n == 1 {
			args = append(args, "-bootstrap")
		} else {
			args = append(args, "-join", o.grpcAddr(1))
		}
		p, err := startProcess(o.dir, id, oracled, args...)
		if err != nil {
			return err
		}
		procs = append(procs, p)
		fmt.Fprintf(out, "quickstart: started %s (pid %d): Raft %s, gRPC %s (mutual TLS), REST http://%s\n", id, p.cmd.Process.Pid, o.raftAddr(n), o.grpcAddr(n), o.httpAddr(n))
	}
	// The joining members retry until member-1 leads and adds them; a
	// restarted cluster elects a leader once a majority is back.
	if err := waitFor(ctx, failed, func(ctx context.Context) bool {
		cr, err := cl.cluster(ctx, o.grpcAddr(1))
		return err == nil && cr.LeaderId != "" && len(cr.Members) == len(quickstartMembers)
	}); err != nil {
		return fmt.Errorf("waiting for the members to form a cluster: %w", err)
	}
	fmt.Fprintln(out, "quickstart: cluster of 3 members up")
	p, err := startProcess(o.dir, "attestor", attestor, "run",
		"-oracle", o.grpcAddr(1), "-tls-ca", ca, "-key", filepath.Join(o.dir, "attestor", "node.key"), "-create-key",
		"-dev-keys", "-device", o.device, "-time-scale", strconv.FormatFloat(o.timeScale, 'g', -1, 64))
	if err != nil {
		return err
	}
	procs = append(procs, p)
	fmt.Fprintf(out, "quickstart: started attestor (pid %d): device %s, oracle %s\n", p.cmd.Process.Pid, o.device, o.grpcAddr(1))
	fmt.Fprintf(out, `
Try:
  # the dashboard
  open http://%[1]s/
  # members, leader, epochs over REST
  curl -s http://%[1]s/v1/cluster
  # the CLI over gRPC with TLS
  truegpuctl cluster --server %[2]s --tls-ca %[3]s
  truegpuctl nodes --server %[2]s --tls-ca %[3]s
  truegpuctl feed latest --server %[2]s --tls-ca %[3]s
  # services and methods by server reflection, no .proto files needed
  grpcurl -cacert %[3]s %[2]s list
  grpcurl -cacert %[3]s -d '{"page_size": 5}' %[2]s truegpu.v1.ReputationService/ListNodes
  # Prometheus metrics
  curl -s http://%[1]s/metrics | grep '^truegpu_oracle_'
Logs: %[4]s/logs/. Ctrl-C stops everything; run again to resume with the same data.
`, o.httpAddr(1), o.grpcAddr(1), ca, o.dir)

	switch o.until {
	case "cluster":
		return nil
	case "report":
		var addr string
		if err := waitFor(ctx, failed, func(ctx context.Context) bool {
			if addr == "" {
				addr, _ = readNodeAddress(filepath.Join(o.dir, "attestor", "node.key"))
			}
			return addr != "" && cl.reportHas(ctx, o.grpcAddr(2), addr)
		}); err != nil {
			return fmt.Errorf("waiting for the attestor's node to have accepted verdicts and a leaf in a complete report: %w", err)
		}
		fmt.Fprintf(out, "quickstart: node %s has accepted verdicts and a leaf in a complete signed report\n", addr)
		if quickstartReached != nil {
			return quickstartReached(ctx, o, addr)
		}
		return nil
	}
	if err := waitFor(ctx, failed, func(context.Context) bool { return false }); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// quickstartReached, when set (tests), runs once --until report is
// reached, before the processes stop.
var quickstartReached func(ctx context.Context, o quickstartOptions, node string) error

// waitFor polls cond until it holds, ctx ends or a process fails.
func waitFor(ctx context.Context, failed func() error, cond func(context.Context) bool) error {
	for {
		if err := failed(); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ok := cond(cctx)
		cancel()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// readNodeAddress returns the address of the attestor's node key once the
// attestor has created it.
func readNodeAddress(path string) (string, error) {
	k, err := ethcrypto.LoadKeyFile(path)
	if err != nil {
		return "", err
	}
	return k.Address().String(), nil
}

// quickstartRPC calls members over TLS, verified against the quickstart CA.
type quickstartRPC struct {
	creds credentials.TransportCredentials
}

func quickstartClient(pki string) (*quickstartRPC, error) {
	creds, err := membertls.Load(filepath.Join(pki, "member-1.pem"), filepath.Join(pki, "member-1-key.pem"), filepath.Join(pki, "ca.pem"), "member-1")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{RootCAs: creds.CAs, MinVersion: tls.VersionTLS12}
	return &quickstartRPC{creds: credentials.NewTLS(cfg)}, nil
}

func (q *quickstartRPC) conn(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(q.creds))
}

func (q *quickstartRPC) cluster(ctx context.Context, addr string) (*truegpuv1.GetClusterResponse, error) {
	cc, err := q.conn(addr)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	return truegpuv1.NewAdminServiceClient(cc).GetCluster(ctx, &truegpuv1.GetClusterRequest{})
}

// reportHas reports whether node has accepted verdicts and the newest
// complete report has a leaf for it.
func (q *quickstartRPC) reportHas(ctx context.Context, addr, node string) bool {
	cc, err := q.conn(addr)
	if err != nil {
		return false
	}
	defer cc.Close()
	n, err := truegpuv1.NewReputationServiceClient(cc).GetNode(ctx, &truegpuv1.GetNodeRequest{Address: node})
	if err != nil || n.GetNode().GetCounters().GetAccepted() == 0 {
		return false
	}
	feed := truegpuv1.NewFeedServiceClient(cc)
	r, err := feed.GetLatestReport(ctx, &truegpuv1.GetLatestReportRequest{})
	if err != nil || !r.GetReport().GetComplete() {
		return false
	}
	_, err = feed.GetNodeProof(ctx, &truegpuv1.GetNodeProofRequest{Epoch: r.Report.Epoch, Address: node})
	return err == nil
}
