package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
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
// go.mod. tags are build tags: "chaosplant" plants a defect
// (TestCheckersCatchPlantedStaleReads).
func BuildOracled(ctx context.Context, moduleRoot, dir string, tags ...string) (string, error) {
	bin := filepath.Join(dir, "oracled")
	// The binary names its VCS revision (OracledBuild) even where GOFLAGS
	// turns stamping off; where git cannot read the tree, it goes without.
	var out []byte
	var err error
	for _, vcs := range []string{"-buildvcs=auto", "-buildvcs=false"} {
		cmd := exec.CommandContext(ctx, "go", "build", vcs, "-tags="+strings.Join(tags, ","), "-o", bin, "./cmd/oracled")
		cmd.Dir = moduleRoot
		if out, err = cmd.CombinedOutput(); err == nil {
			return bin, nil
		}
	}
	return "", fmt.Errorf("chaos: go build ./cmd/oracled: %w\n%s", err, out)
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
	// Spares are members prepared (keys, certificates, ports, proxies)
	// but not started: a membership change adds one (AddMember). Default
	// none.
	Spares int
	// SnapshotEvery, when not zero, makes every member take a Raft
	// snapshot every SnapshotEvery entries (oracled
	// -unsafe-snapshot-every), so that a member far enough behind is sent
	// one. Default 0: oracled's own threshold (8,192 entries).
	SnapshotEvery uint64
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
	// ClockFile holds the offset in milliseconds of the member's clock
	// (oracled -unsafe-clock-file); DiskFaultFile, while it exists, makes
	// the writes of the member's Raft log fail (-unsafe-disk-fault-file);
	// RestoreHoldFile, while it exists, holds a snapshot restore at the
	// stage it names and RestoreHoldFile+".held" says one is held
	// (-unsafe-restore-hold-file).
	ClockFile, DiskFaultFile, RestoreHoldFile string
	// CertFile and KeyFile are the member's TLS certificate and key.
	CertFile, KeyFile string

	args      []string
	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{}
	paused    bool
	starts    int
	inCluster bool
	windows   []LogWindow
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

// freePort returns a loopback address with a port free right now, drawn
// below the kernel's ephemeral range where it can: a member's port is
// free while the member is down (killed, restarting), and a port of the
// ephemeral range may then be handed to any outgoing connection on the
// machine (another run's, with -parallel), which kept the member from
// binding it again.
func freePort() (string, error) {
	if lo := ephemeralLow(); lo > minMemberPort+1000 {
		for range 50 {
			port := minMemberPort + rand.IntN(lo-minMemberPort)
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				l.Close()
				return l.Addr().String(), nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// minMemberPort is the lowest port freePort draws.
const minMemberPort = 20000

// ephemeralLow returns the first port of the kernel's ephemeral range
// (Linux's ip_local_port_range), or 0 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
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
	for _, m := range c.Members[:cfg.Members] {
		if err := c.start(m, ""); err != nil {
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
	ids := make([]string, c.Config.Members+c.Config.Spares)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%d", i)
	}
	files, err := c.ca.WritePEM(filepath.Join(c.Config.Dir, "pki"), ids...)
	if err != nil {
		return err
	}
	c.tls = &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: c.ca.Pool()}
	for i, id := range ids {
		m := &Member{Index: i, ID: id, DataDir: filepath.Join(c.Config.Dir, id), LogPath: filepath.Join(c.Config.Dir, id+".log"),
			ClockFile: filepath.Join(c.Config.Dir, id+".clock"), DiskFaultFile: filepath.Join(c.Config.Dir, id+".diskfault"),
			RestoreHoldFile: filepath.Join(c.Config.Dir, id+".restorehold")}
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
		m.CertFile, m.KeyFile = f.Cert, f.Key
		m.args = []string{
			"-node-id", id, "-data-dir", m.DataDir, "-signer-key", keyFile,
			"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA, "-feed-no-chain", "-cluster-id", ClusterID,
			"-raft-addr", m.RaftAddr, "-raft-advertise", m.RaftProxy,
			"-grpc-addr", m.GRPCAddr, "-grpc-advertise", m.GRPCProxy, "-http-addr", m.HTTPAddr,
			"-unsafe-dev-keys", "-timed-stand-in", "-profile", "test", "-retain-epochs", "100000",
			"-epoch", c.Config.Epoch.String(), "-challenge-interval", c.Config.ChallengeInterval.String(),
			"-unsafe-clock-file", m.ClockFile, "-unsafe-disk-fault-file", m.DiskFaultFile,
			"-unsafe-restore-hold-file", m.RestoreHoldFile,
		}
		if c.Config.SnapshotEvery > 0 {
			m.args = append(m.args, "-unsafe-snapshot-every", fmt.Sprint(c.Config.SnapshotEvery))
		}
		if c.Config.VerifyingKey != "" {
			m.args = append(m.args, "-verifying-key", c.Config.VerifyingKey)
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

// logWriter hides the log file's type from os/exec, which then gives the
// process a pipe instead of the file: a process whose file writes fail
// (a disk-full fault limits the size of the files it writes) still
// reports why.
type logWriter struct{ f *os.File }

func (w logWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// start runs m's process, appending its output to m.LogPath. The first
// start of the cluster's first member bootstraps the cluster; every other
// start joins through joinVia (a member's gRPC proxy address), or when it
// is empty through the first member (the second for the first member).
// Joining again is harmless for a member that is already one.
func (c *Cluster) start(m *Member, joinVia string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("chaos: member %s is running", m.ID)
	}
	log, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	args := append([]string(nil), m.args...)
	switch {
	case m.Index == 0 && m.starts == 0:
		args = append(args, "-bootstrap")
	case joinVia != "":
		args = append(args, "-join", joinVia)
	case m.Index == 0:
		args = append(args, "-join", c.Members[1].GRPCProxy)
	default:
		args = append(args, "-join", c.Members[0].GRPCProxy)
	}
	m.starts++
	m.inCluster = true
	fmt.Fprintf(log, "\n=== chaos: start %d of %s\n", m.starts, m.ID)
	cmd := exec.Command(c.Config.Binary, args...)
	cmd.Stdout, cmd.Stderr = logWriter{log}, logWriter{log}
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
func (c *Cluster) Restart(m *Member) error { return c.start(m, "") }

// StartFresh starts a stopped member with an empty data directory (its
// old one removed), joining through the leader: a member that lost its
// disk, or a new one.
func (c *Cluster) StartFresh(ctx context.Context, m *Member) error {
	if m.Running() {
		return fmt.Errorf("chaos: member %s is running", m.ID)
	}
	if err := os.RemoveAll(m.DataDir); err != nil {
		return err
	}
	via := ""
	if l := c.Leader(ctx); l >= 0 && l != m.Index {
		via = c.Members[l].GRPCProxy
	} else {
		for _, o := range c.Active() {
			if o != m && o.Running() {
				via = o.GRPCProxy
				break
			}
		}
	}
	return c.start(m, via)
}

// InCluster reports whether m is one of the cluster's members (started
// and not removed).
func (m *Member) InCluster() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inCluster
}

// Active returns the members of the cluster (not the spares and not the
// removed ones), in index order.
func (c *Cluster) Active() []*Member {
	var out []*Member
	for _, m := range c.Members {
		if m.InCluster() {
			out = append(out, m)
		}
	}
	return out
}

// ActiveIndexes returns the indexes of Active.
func (c *Cluster) ActiveIndexes() []int {
	var out []int
	for _, m := range c.Active() {
		out = append(out, m.Index)
	}
	return out
}

// Pick returns the index of a member of the cluster drawn by rng.
func (c *Cluster) Pick(rng interface{ IntN(int) int }) int {
	a := c.ActiveIndexes()
	if len(a) == 0 {
		return 0
	}
	return a[rng.IntN(len(a))]
}

// Retire marks m as no longer a member (after it was removed and
// stopped): the checks and the workload leave it out.
func (c *Cluster) Retire(m *Member) {
	m.mu.Lock()
	m.inCluster = false
	m.mu.Unlock()
}

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

// Route returns a connection that sends each call to member i while it is
// a member of the cluster, and to the cluster's first member once it is
// not (it was removed).
func (c *Cluster) Route(i int) grpc.ClientConnInterface { return routedConn{c, i} }

type routedConn struct {
	c *Cluster
	i int
}

func (r routedConn) conn() *grpc.ClientConn {
	if !r.c.Members[r.i].InCluster() {
		if a := r.c.Active(); len(a) > 0 {
			return r.c.clients[a[0].Index]
		}
	}
	return r.c.clients[r.i]
}

func (r routedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return r.conn().Invoke(ctx, method, args, reply, opts...)
}

func (r routedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return r.conn().NewStream(ctx, desc, method, opts...)
}

// ClientTLS returns the TLS configuration of the harness's connections.
func (c *Cluster) ClientTLS() *tls.Config { return c.tls.Clone() }

// Health asks member i for its health.
func (c *Cluster) Health(ctx context.Context, i int) (*truegpuv1.GetHealthResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return truegpuv1.NewAdminServiceClient(c.clients[i]).GetHealth(ctx, &truegpuv1.GetHealthRequest{})
}

// Leader returns the index of the member every running member of the
// cluster names as leader, or -1.
func (c *Cluster) Leader(ctx context.Context) int {
	leader := ""
	for _, m := range c.Active() {
		if !m.Running() {
			continue
		}
		h, err := c.Health(ctx, m.Index)
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

// WaitHealthy waits until every member of the cluster runs, serves, and
// names the same leader, and the voters of the configuration are exactly
// the members of the cluster.
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
	active := c.Active()
	for _, m := range active {
		if !m.Running() {
			return fmt.Errorf("%s is not running", m.ID)
		}
		h, err := c.Health(ctx, m.Index)
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
	cl, err := truegpuv1.NewAdminServiceClient(c.clients[active[0].Index]).GetCluster(cctx, &truegpuv1.GetClusterRequest{})
	if err != nil {
		return err
	}
	var voters, want []string
	for _, m := range cl.Members {
		if m.Suffrage == "voter" {
			voters = append(voters, m.Id)
		}
	}
	for _, m := range active {
		want = append(want, m.ID)
	}
	sort.Strings(voters)
	if strings.Join(voters, ",") != strings.Join(want, ",") {
		return fmt.Errorf("voters %v, members %v", voters, want)
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

// logSize returns the current size of m's log.
func (m *Member) logSize() int64 {
	st, err := os.Stat(m.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// OpenWindow starts a LogWindow of m's log (a disk fault begins); allow
// names the fault's errors.
func (m *Member) OpenWindow(allow ...string) {
	from := m.logSize()
	m.mu.Lock()
	m.windows = append(m.windows, LogWindow{Path: m.LogPath, From: from, To: -1, Allow: allow})
	m.mu.Unlock()
}

// CloseWindow ends m's open LogWindow at the log's current size (call it
// after the process exited, or once the fault is off).
func (m *Member) CloseWindow() {
	to := m.logSize()
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.windows); n > 0 && m.windows[n-1].To < 0 {
		m.windows[n-1].To = to
	}
}

// Windows returns m's LogWindows.
func (m *Member) Windows() []LogWindow {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]LogWindow(nil), m.windows...)
}

// Exited returns a channel closed when m's current process exits (nil when
// none runs).
func (m *Member) Exited() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return nil
	}
	return m.exited
}

// Reap records that m's process exited on its own (it crashed or failed
// stop); it reports false when it is still running.
func (c *Cluster) Reap(m *Member) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return true
	}
	select {
	case <-m.exited:
		m.cmd, m.paused = nil, false
		return true
	default:
		return false
	}
}

// PID returns the process id of m's running process, or 0.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}
