package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Unknown is the member index of a connection whose opener is not a
// member (the harness itself, or a process the proxy cannot identify).
// Rules never apply to it.
const Unknown = -1

// linkRule is what happens to connections one member opens to another.
type linkRule struct {
	blocked bool          // new connections refused, open ones cut
	latency time.Duration // added to every chunk, both directions
	drop    float64       // probability that a chunk resets the connection
}

// Network is the set of TCP proxies between members. Each member's Raft and
// gRPC addresses as published to the other members are proxy listeners
// that forward to the member's real addresses; the rules say what happens
// to each directed link (connections member i opens to member j). A rule
// that blocks a link also cuts the link's open connections. Network is
// safe for concurrent use.
type Network struct {
	mu      sync.Mutex
	pids    map[int]int // pid -> member index
	rules   map[[2]int]linkRule
	conns   map[*proxyConn]struct{}
	rng     *rand.Rand
	lns     []net.Listener
	closed  bool
	wg      sync.WaitGroup
	counter struct{ accepted, refused, reset int64 }
}

// proxyConn is one proxied connection.
type proxyConn struct {
	from, to int
	client   net.Conn
	server   net.Conn
	once     sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		c.client.Close()
		if c.server != nil {
			c.server.Close()
		}
	})
}

// NewNetwork returns a network with no rules. seed drives the drop
// decisions.
func NewNetwork(seed uint64) *Network {
	return &Network{
		pids:  map[int]int{},
		rules: map[[2]int]linkRule{},
		conns: map[*proxyConn]struct{}{},
		rng:   rand.New(rand.NewPCG(seed, 0x70726f7879)),
	}
}

// SetPID records that process pid is member idx (after each start).
func (n *Network) SetPID(idx, pid int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p, i := range n.pids {
		if i == idx {
			delete(n.pids, p)
		}
	}
	n.pids[pid] = idx
}

// Proxy listens on a free loopback port and forwards each connection to
// target, as traffic into member to. It returns the listening address.
func (n *Network) Proxy(to int, target string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("chaos: proxy listen: %w", err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ln.Close()
		return "", errors.New("chaos: network closed")
	}
	n.lns = append(n.lns, ln)
	n.mu.Unlock()
	n.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.wg.Go(func() { n.serve(c, to, target) })
		}
	})
	return ln.Addr().String(), nil
}

func (n *Network) serve(client net.Conn, to int, target string) {
	from := n.identify(client)
	n.mu.Lock()
	rule := n.rules[[2]int{from, to}]
	if n.closed || (from != Unknown && rule.blocked) {
		n.counter.refused++
		n.mu.Unlock()
		client.Close()
		return
	}
	n.counter.accepted++
	n.mu.Unlock()
	server, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		client.Close()
		return
	}
	pc := &proxyConn{from: from, to: to, client: client, server: server}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		pc.close()
		return
	}
	n.conns[pc] = struct{}{}
	n.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { n.pump(pc, client, server) })
	wg.Go(func() { n.pump(pc, server, client) })
	wg.Wait()
	pc.close()
	n.mu.Lock()
	delete(n.conns, pc)
	n.mu.Unlock()
}

// chunk is data read from one side with the time it may be written to the
// other.
type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst, delaying each chunk by the link's latency and
// resetting the connection with the link's drop probability. Order is
// kept: a writer goroutine releases chunks in the order they were read.
func (n *Network) pump(pc *proxyConn, src, dst net.Conn) {
	q := make(chan chunk, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.b); err != nil {
				pc.close()
				for range q {
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			rule, reset := n.chunkRule(pc)
			if reset {
				pc.close()
				break
			}
			q <- chunk{b: append([]byte(nil), buf[:k]...), at: time.Now().Add(rule.latency)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				pc.close()
			}
			break
		}
	}
	close(q)
	<-done
}

// chunkRule returns the link's rule for one chunk and whether the chunk
// resets the connection (blocked link or a drawn drop).
func (n *Network) chunkRule(pc *proxyConn) (linkRule, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pc.from == Unknown {
		return linkRule{}, false
	}
	r := n.rules[[2]int{pc.from, pc.to}]
	if r.blocked || (r.drop > 0 && n.rng.Float64() < r.drop) {
		n.counter.reset++
		return r, true
	}
	return r, false
}

// Block refuses connections member from opens to member to and cuts the
// open ones (a one-way partition in terms of who may dial whom).
func (n *Network) Block(from, to int) {
	n.update(from, to, func(r *linkRule) { r.blocked = true })
}

// Partition blocks every link between the two groups, both ways.
func (n *Network) Partition(a, b []int) {
	for _, i := range a {
		for _, j := range b {
			n.Block(i, j)
			n.Block(j, i)
		}
	}
}

// Slow adds latency to every chunk on link from→to and resets its
// connections with probability drop per chunk.
func (n *Network) Slow(from, to int, latency time.Duration, drop float64) {
	n.update(from, to, func(r *linkRule) { r.latency, r.drop = latency, drop })
}

func (n *Network) update(from, to int, f func(*linkRule)) {
	n.mu.Lock()
	r := n.rules[[2]int{from, to}]
	f(&r)
	n.rules[[2]int{from, to}] = r
	var cut []*proxyConn
	if r.blocked {
		for pc := range n.conns {
			if pc.from == from && pc.to == to {
				cut = append(cut, pc)
			}
		}
	}
	n.mu.Unlock()
	for _, pc := range cut {
		pc.close()
	}
}

// Heal removes every rule.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules = map[[2]int]linkRule{}
}

// Stats returns the connections accepted, refused and reset so far.
func (n *Network) Stats() (accepted, refused, reset int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.counter.accepted, n.counter.refused, n.counter.reset
}

// Close stops every proxy and cuts every connection.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	lns := n.lns
	n.lns = nil
	conns := make([]*proxyConn, 0, len(n.conns))
	for pc := range n.conns {
		conns = append(conns, pc)
	}
	n.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, pc := range conns {
		pc.close()
	}
	n.wg.Wait()
}

// identify returns the member whose process opened c: the client end of c
// is a socket in the kernel's TCP table, and the member's process holds its
// inode among its file descriptors.
func (n *Network) identify(c net.Conn) int {
	remote, ok1 := c.RemoteAddr().(*net.TCPAddr)
	local, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return Unknown
	}
	inode := socketInode(remote, local)
	if inode == "" {
		return Unknown
	}
	n.mu.Lock()
	pids := make(map[int]int, len(n.pids))
	for p, i := range n.pids {
		pids[p] = i
	}
	n.mu.Unlock()
	want := "socket:[" + inode + "]"
	for pid, idx := range pids {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name())); err == nil && l == want {
				return idx
			}
		}
	}
	return Unknown
}

// socketInode finds the inode of the TCP socket whose local address is
// local and whose peer is remote, in /proc/net/tcp or /proc/net/tcp6.
func socketInode(local, remote *net.TCPAddr) string {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if in := scanTCPTable(table, local, remote); in != "" {
			return in
		}
	}
	return ""
}

func scanTCPTable(path string, local, remote *net.TCPAddr) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[0] == "sl" {
			continue
		}
		if procAddrEqual(fs[1], local) && procAddrEqual(fs[2], remote) {
			return fs[9]
		}
	}
	return ""
}

// procAddrEqual compares a /proc/net/tcp address ("0100007F:1F90", the IP
// in host byte order per 32-bit word) with a.
func procAddrEqual(s string, a *net.TCPAddr) bool {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil || int(port) != a.Port {
		return false
	}
	var ip net.IP
	switch len(hexIP) {
	case 8:
		ip = make(net.IP, 4)
	case 32:
		ip = make(net.IP, 16)
	default:
		return false
	}
	for w := 0; w < len(ip)/4; w++ {
		v, err := strconv.ParseUint(hexIP[8*w:8*w+8], 16, 32)
		if err != nil {
			return false
		}
		// Each 32-bit word is printed as a little-endian integer.
		ip[4*w], ip[4*w+1], ip[4*w+2], ip[4*w+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	return ip.Equal(a.IP)
}
