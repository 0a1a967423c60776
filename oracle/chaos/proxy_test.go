package chaos

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// echoServer answers each line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends one line over c and reports whether it came back.
func roundTrip(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The test process plays member 0; the echo server is member 1.
func TestProxyIdentifiesDiallerAndBlocks(t *testing.T) {
	n := NewNetwork(1)
	t.Cleanup(n.Close)
	addr, err := n.Proxy(1, echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	n.SetPID(0, os.Getpid())

	c := dial(t, addr)
	if !roundTrip(c) {
		t.Fatal("no round trip through a healthy link")
	}
	n.Block(0, 1)
	if roundTrip(c) {
		t.Fatal("an open connection survived a block of its link")
	}
	if roundTrip(dial(t, addr)) {
		t.Fatal("a new connection crossed a blocked link")
	}
	// The reverse direction's rule does not apply to member 0's dials.
	n.Heal()
	n.Block(1, 0)
	if !roundTrip(dial(t, addr)) {
		t.Fatal("a block of 1→0 stopped 0→1")
	}
	n.Heal()
	n.Slow(0, 1, 20*time.Millisecond, 0)
	if !roundTrip(dial(t, addr)) {
		t.Fatal("no round trip through a slow link")
	}
	n.Slow(0, 1, 0, 1)
	if roundTrip(dial(t, addr)) {
		t.Fatal("a link that drops every chunk delivered one")
	}
	if _, _, reset := n.Stats(); reset == 0 {
		t.Fatal("no reset counted")
	}
}

// A dialler that is no member is never subject to rules.
func TestProxyLeavesUnknownDiallersAlone(t *testing.T) {
	n := NewNetwork(1)
	t.Cleanup(n.Close)
	addr, err := n.Proxy(1, echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	n.SetPID(0, 1) // pid 1 is not this process
	n.Block(0, 1)
	if !roundTrip(dial(t, addr)) {
		t.Fatal("an unidentified dialler was blocked")
	}
}

// TestFreePortBelowEphemeralRange: members' ports come from below the
// kernel's ephemeral range, which outgoing connections draw from, and are
// free to bind.
func TestFreePortBelowEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	if lo <= minMemberPort+1000 {
		t.Skipf("ephemeral range starts at %d: freePort falls back to any free port", lo)
	}
	for range 20 {
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if port < minMemberPort || port >= lo {
			t.Fatalf("port %d outside [%d, %d)", port, minMemberPort, lo)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the free port %s cannot be bound: %v", addr, err)
		}
		l.Close()
	}
}
