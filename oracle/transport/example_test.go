package transport_test

import (
	"log"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/oracle/transport"
)

// Build a Raft network transport over mutual TLS. In production the
// certificate and CA come from the operator's files (membertls.Load and
// the credentials' ServerConfig and ClientConfig).
func ExampleListen() {
	ca, err := devpki.NewCA("dev-cluster")
	if err != nil {
		log.Fatal(err)
	}
	cert, err := ca.Issue("node-1")
	if err != nil {
		log.Fatal(err)
	}
	layer, err := transport.Listen("127.0.0.1:0", nil, devpki.ServerConfig(ca, cert), devpki.ClientConfig(ca, cert))
	if err != nil {
		log.Fatal(err)
	}
	trans := raft.NewNetworkTransport(layer, 3, 10*time.Second, os.Stderr)
	defer trans.Close() // also closes the stream layer
	_ = trans           // pass to raft.NewRaft
}
