package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// BuildOracled builds cmd/oracled of the module that holds this package
// into dir and returns the binary's path. moduleRoot is the directory of
// go.mod.
func BuildOracled(ctx context.Context, moduleRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "oracled")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/oracled")
	cmd.Dir = moduleRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("chaos: go build ./cmd/oracled: %w\n%s", err, out)
	}
	return bin, nil
}

// ModuleRoot returns the directory of the go.mod above the working
// directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 32 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("chaos: no go.mod above the working directory")
}

// ClusterConfig configures a cluster of member processes.
type ClusterConfig struct {
	// Binary is the oracled executable; required.
	Binary string
	// Dir holds the members' data, keys, certificates and logs; required.
	Dir string
	// Members is the cluster size. Default 3.
	Members int
	// Epoch and ChallengeInterval are passed to every member.
	Epoch, ChallengeInterval time.Duration
	// VerifyingKey is the path of the test profile's dev verifying key
	// (saves each member the dev setup); empty: each member runs it.
	VerifyingKey string
	// Seed drives the proxies' drop decisions.
	Seed uint64
}

// ClusterID is the cluster id of every harness cluster; node requests
// name it.
const ClusterID = "chaos"

// Member is one oracled process and its addresses.
type Member struct {
	Index int
	ID    string
	// Real listen addresses.
	RaftAddr, GRPCAddr, HTTPAddr string
	// Proxy addresses other members reach it through.
	RaftProxy, GRPCProxy string
	DataDir, LogPath     string
	Signer               ethcrypto.Address

	args   []string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	starts int
}

// Cluster is a running set of member processes behind a Network.
type Cluster struct {
	Config  ClusterConfig
	Members []*Member
	Net     *Network

	ca      *devpki.CA
	clients []*grpc.ClientConn
	tls     *tls.Config
}

// freePort returns a loopback address with a port free right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartCluster prepares keys, certificates and proxies, starts the first
// member with -bootstrap and the others with -join, and waits until every
// member serves with the same leader. Close stops everything, also after
// an error.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Members == 0 {
		cfg.Members = 3
	}
	if cfg.Binary == "" || cfg.Dir == "" {
		return nil, errors.New("chaos: ClusterConfig needs Binary and Dir")
	}
	c := &Cluster{Config: cfg, Net: NewNetwork(cfg.Seed)}
	if err := c.prepare(); err != nil {
		c.Close()
		return nil, err
	}
	// All at once: the joining members retry until the first one leads.
	for _, m := range c.Members {
		if err := c.start(m); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitHealthy(ctx, 90*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) prepare() error {
	var err error
	if c.ca, err = devpki.NewCA("truegpu chaos CA"); err != nil {
		return err
	}
	ids := make([]string, c.Config.Members)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	files, err := c.ca.WritePEM(filepath.Join(c.Config.Dir, "pki"), ids...)
	if err != nil {
		return err
	}
	c.tls = &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.ca.Pool()}
	for i, id := range ids {
		m := &Member{Index: i, ID: id, DataDir: filepath.Join(c.Config.Dir, id), LogPath: filepath.Join(c.Config.Dir, id+".log")}
		for _, p := range []*string{&m.RaftAddr, &m.GRPCAddr, &m.HTTPAddr} {
			if *p, err = freePort(); err != nil {
				return err
			}
		}
		if m.RaftProxy, err = c.Net.Proxy(i, m.RaftAddr); err != nil {
			return err
		}
		if m.GRPCProxy, err = c.Net.Proxy(i, m.GRPCAddr); err != nil {
			return err
		}
		key, err := ethcrypto.GenerateKey()
		if err != nil {
			return err
		}
		m.Signer = key.Address()
		keyFile := filepath.Join(c.Config.Dir, id+".signer")
		if err := ethcrypto.SaveKeyFile(keyFile, key); err != nil {
			return err
		}
		f := files[id]
		m.args = []string{
			"-node-id", id, "-data-dir", m.DataDir, "-signer-key", keyFile,
			"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA, "-feed-no-chain", "-cluster-id", ClusterID,
			"-raft-addr", m.RaftAddr, "-raft-advertise", m.RaftProxy,
			"-grpc-addr", m.GRPCAddr, "-grpc-advertise", m.GRPCProxy, "-http-addr", m.HTTPAddr,
			"-unsafe-dev-keys", "-timed-stand-in", "-profile", "test", "-retain-epochs", "100000",
			"-epoch", c.Config.Epoch.String(), "-challenge-interval", c.Config.ChallengeInterval.String(),
		}
		if c.Config.VerifyingKey != "" {
			m.args = append(m.args, "-verifying-key", c.Config.VerifyingKey)
		}
		if i == 0 {
			m.args = append(m.args, "-bootstrap")
		} else {
			m.args = append(m.args, "-join", c.Members[0].GRPCProxy)
		}
		c.Members = append(c.Members, m)
		cc, err := grpc.NewClient(m.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(c.tls)))
		if err != nil {
			return err
		}
		c.clients = append(c.clients, cc)
	}
	return nil
}

// start runs m's process, appending its output to m.LogPath.
func (c *Cluster) start(m *Member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("chaos: member %s is running", m.ID)
	}
	log, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	m.starts++
	fmt.Fprintf(log, "\n=== chaos: start %d of %s\n", m.starts, m.ID)
	cmd := exec.Command(c.Config.Binary, m.args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so a terminal's signals reach the harness
	// only; the harness kills it, and the kernel does if the harness dies
	// first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("chaos: start %s: %w", m.ID, err)
	}
	m.cmd, m.paused = cmd, false
	m.exited = make(chan struct{})
	c.Net.SetPID(m.Index, cmd.Process.Pid)
	exited := m.exited
	go func() {
		cmd.Wait()
		log.Close()
		close(exited)
	}()
	return nil
}

// Running reports whether m's process is running (paused counts).
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// Kill sends SIGKILL to m and waits for it to exit.
func (c *Cluster) Kill(m *Member) error {
	_, err := c.stop(m, syscall.SIGKILL, 0)
	return err
}

// Stop sends SIGTERM to m, and SIGKILL if it has not exited after grace;
// forced reports the SIGKILL. A member stopped by force may have lost state
// writes it had not synced (Raft replays them from its log at the next
// start), so its state database is not its final state.
func (c *Cluster) Stop(m *Member, grace time.Duration) (forced bool, err error) {
	return c.stop(m, syscall.SIGTERM, grace)
}

func (c *Cluster) stop(m *Member, sig syscall.Signal, grace time.Duration) (forced bool, err error) {
	m.mu.Lock()
	cmd, exited, paused := m.cmd, m.exited, m.paused
	m.mu.Unlock()
	if cmd == nil {
		return false, nil
	}
	if paused {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		select {
		case <-exited:
		case <-time.After(grace):
			forced = true
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		return forced, fmt.Errorf("chaos: %s did not exit", m.ID)
	}
	m.mu.Lock()
	m.cmd, m.paused = nil, false
	m.mu.Unlock()
	return forced, nil
}

// Restart starts a stopped member again from its data directory.
func (c *Cluster) Restart(m *Member) error { return c.start(m) }

// Pause stops m with SIGSTOP.
func (c *Cluster) Pause(m *Member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("chaos: %s is not running", m.ID)
	}
	m.paused = true
	return m.cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume continues a paused member with SIGCONT.
func (c *Cluster) Resume(m *Member) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("chaos: %s is not running", m.ID)
	}
	m.paused = false
	return m.cmd.Process.Signal(syscall.SIGCONT)
}

// Conn returns the harness's gRPC connection to member i's real address
// (TLS, verified against the cluster CA, no client certificate: the
// public API).
func (c *Cluster) Conn(i int) *grpc.ClientConn { return c.clients[i] }

// ClientTLS returns the TLS configuration of the harness's connections.
func (c *Cluster) ClientTLS() *tls.Config { return c.tls.Clone() }

// Health asks member i for its health.
func (c *Cluster) Health(ctx context.Context, i int) (*truegpuv1.GetHealthResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return truegpuv1.NewAdminServiceClient(c.clients[i]).GetHealth(ctx, &truegpuv1.GetHealthRequest{})
}

// Leader returns the index of the member every running member names as
// leader, or -1.
func (c *Cluster) Leader(ctx context.Context) int {
	leader := ""
	for i, m := range c.Members {
		if !m.Running() {
			continue
		}
		h, err := c.Health(ctx, i)
		if err != nil || h.LeaderId == "" {
			return -1
		}
		if leader != "" && h.LeaderId != leader {
			return -1
		}
		leader = h.LeaderId
	}
	for i, m := range c.Members {
		if m.ID == leader {
			return i
		}
	}
	return -1
}

// WaitLeader waits until every running member names the same leader.
func (c *Cluster) WaitLeader(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.Leader(ctx) >= 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c.exitError(errors.New("no leader"))
}

// WaitHealthy waits until every member runs, serves, and names the same
// leader, with every member a voter of the configuration.
func (c *Cluster) WaitHealthy(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = c.healthy(ctx)
		if last == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return c.exitError(fmt.Errorf("chaos: cluster not healthy after %v: %w", d, last))
}

func (c *Cluster) healthy(ctx context.Context) error {
	leader := ""
	for i, m := range c.Members {
		if !m.Running() {
			return fmt.Errorf("%s is not running", m.ID)
		}
		h, err := c.Health(ctx, i)
		if err != nil {
			return fmt.Errorf("%s: %w", m.ID, err)
		}
		if h.Status != "serving" {
			return fmt.Errorf("%s: %s %v", m.ID, h.Status, h.Problems)
		}
		if leader != "" && h.LeaderId != leader {
			return fmt.Errorf("%s names leader %q, others %q", m.ID, h.LeaderId, leader)
		}
		leader = h.LeaderId
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cl, err := truegpuv1.NewAdminServiceClient(c.clients[0]).GetCluster(cctx, &truegpuv1.GetClusterRequest{})
	if err != nil {
		return err
	}
	voters := 0
	for _, m := range cl.Members {
		if m.Suffrage == "voter" {
			voters++
		}
	}
	if voters != len(c.Members) {
		return fmt.Errorf("%d voters of %d members", voters, len(c.Members))
	}
	return nil
}

// exitError adds to err the members that exited on their own, with the
// tail of their logs.
func (c *Cluster) exitError(err error) error {
	var b strings.Builder
	for _, m := range c.Members {
		m.mu.Lock()
		exited := m.exited
		running := m.cmd != nil
		m.mu.Unlock()
		if !running || exited == nil {
			continue
		}
		select {
		case <-exited:
			fmt.Fprintf(&b, "\n%s exited; log tail:\n%s", m.ID, tail(m.LogPath, 2000))
		default:
		}
	}
	if b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w%s", err, b.String())
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Close kills every member process, closes the connections and proxies.
// It is safe to call more than once.
func (c *Cluster) Close() {
	for _, m := range c.Members {
		c.Kill(m)
	}
	for _, cc := range c.clients {
		cc.Close()
	}
	c.clients = nil
	c.Net.Close()
}
