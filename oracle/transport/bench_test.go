package transport_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/oracle/transport"
)

// serve answers every AppendEntries RPC on trans with success until done.
func serve(trans raft.Transport, done <-chan struct{}) {
	for {
		select {
		case rpc := <-trans.Consumer():
			rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
		case <-done:
			return
		}
	}
}

// BenchmarkAppendEntries measures one AppendEntries RPC carrying 64
// 128-byte entries over raft's NetworkTransport, on the TLS stream layer
// and, for comparison, on raft's plain TCP transport. The connection is
// pooled, so the TLS handshake is paid once, not per RPC.
func BenchmarkAppendEntries(b *testing.B) {
	ca, err := devpki.NewCA("bench-ca")
	if err != nil {
		b.Fatal(err)
	}
	tlsTransport := func(id string) raft.Transport {
		cert, err := ca.Issue(id)
		if err != nil {
			b.Fatal(err)
		}
		layer, err := transport.Listen("127.0.0.1:0", nil, devpki.ServerConfig(ca, cert), devpki.ClientConfig(ca, cert))
		if err != nil {
			b.Fatal(err)
		}
		return raft.NewNetworkTransport(layer, 2, 10*time.Second, io.Discard)
	}
	tcpTransport := func(string) raft.Transport {
		t, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 10*time.Second, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	for _, kind := range []struct {
		name string
		make func(string) raft.Transport
	}{{"tls", tlsTransport}, {"tcp", tcpTransport}} {
		b.Run(kind.name, func(b *testing.B) {
			client, server := kind.make("node-a"), kind.make("node-b")
			defer client.(io.Closer).Close()
			defer server.(io.Closer).Close()
			done := make(chan struct{})
			defer close(done)
			go serve(server, done)
			req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("node-a"), Addr: []byte(client.LocalAddr())}, Term: 1}
			for i := range 64 {
				req.Entries = append(req.Entries, &raft.Log{Index: uint64(i + 1), Term: 1, Data: make([]byte, 128)})
			}
			var resp raft.AppendEntriesResponse
			b.SetBytes(64 * 128)
			for b.Loop() {
				if err := client.AppendEntries("node-b", server.LocalAddr(), req, &resp); err != nil {
					b.Fatal(err)
				}
				if !resp.Success {
					b.Fatal(fmt.Errorf("AppendEntries not successful"))
				}
			}
		})
	}
}
