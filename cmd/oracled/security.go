package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/membertls"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// errNoTLS is returned when a member would start without mutual TLS.
var errNoTLS = errors.New("a member needs mutual TLS: set -tls-cert, -tls-key and -tls-ca (certificates from the cluster's CA whose common name is the member id), or -insecure-no-tls for a cluster on one machine's loopback")

// loadMemberTLS loads the member's TLS material. Without any -tls-* flag it
// returns nil credentials only when insecure is set and every address is
// a loopback one.
func loadMemberTLS(certFile, keyFile, caFile, memberID string, insecure bool, addrs map[string]string) (*membertls.Credentials, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		if !insecure {
			return nil, errNoTLS
		}
		return nil, checkLoopback(addrs)
	}
	if insecure {
		return nil, errors.New("-insecure-no-tls cannot be combined with -tls-cert, -tls-key and -tls-ca")
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("mutual TLS needs -tls-cert, -tls-key and -tls-ca together")
	}
	return membertls.Load(certFile, keyFile, caFile, memberID)
}

// checkLoopback requires every non-empty address to name a loopback host.
func checkLoopback(addrs map[string]string) error {
	var bad []string
	for flag, a := range addrs {
		if a != "" && !isLoopback(a) {
			bad = append(bad, fmt.Sprintf("-%s %s", flag, a))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("-insecure-no-tls binds and dials loopback addresses only (127.0.0.1, ::1, localhost); not: %s", strings.Join(bad, ", "))
	}
	return nil
}

// isLoopback reports whether host:port names a loopback host. An empty
// host (all interfaces) is not one.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnInsecure prints the -insecure-no-tls banner.
func warnInsecure(w io.Writer) {
	const rule = "oracled: ************************************************************************"
	fmt.Fprintln(w, rule)
	fmt.Fprintln(w, "oracled: WARNING: -insecure-no-tls: member traffic is neither authenticated nor")
	fmt.Fprintln(w, "oracled: encrypted. Raft and the member-only calls (JoinMember, RemoveMember,")
	fmt.Fprintln(w, "oracled: SubmitReportSignature) answer any process on this machine. Every address")
	fmt.Fprintln(w, "oracled: is loopback; use this for tests on one machine, never for a real cluster.")
	fmt.Fprintln(w, rule)
}

// loadVerifyingKey reads the verifying key file of -verifying-key. A key of
// the UNSAFE dev setup (its trapdoor is public: anyone can forge proofs
// under it) is refused unless devOK (-unsafe-dev-keys), and then announced.
func loadVerifyingKey(path string, devOK bool, warn io.Writer) (*verifier.VerifyingKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vk, err := verifier.DecodeVerifyingKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if id, dev := prover.IsUnsafeDevKey(vk); dev {
		if !devOK {
			return nil, fmt.Errorf("%s is a verifying key of the UNSAFE dev setup of %s: its trapdoor is public, so anyone can forge proofs under it; use the key of a ceremony (truegpuctl ceremony), or add -unsafe-dev-keys for development", path, id)
		}
		fmt.Fprintf(warn, "oracled: WARNING: %s is an UNSAFE dev verifying key (%s); anyone can forge proofs under it\n", path, id)
	}
	return vk, nil
}

// errNoChain is returned when a production member names no chain for its
// reports.
var errNoChain = errors.New("epoch reports need the chain they are for: set -chain-id and -feed-contract (the chain id and address of the feed contract), or -feed-no-chain for reports no contract is meant to accept")

// feedDomain returns the EIP-712 domain of the member's epoch reports from
// -chain-id and -feed-contract. Every member of a cluster must use the same
// one. Without either, a member with TLS (production) needs -feed-no-chain;
// then, and in a loopback cluster without TLS, reports are signed for chain
// id 0 and the zero contract, which no contract accepts, and notice says so.
func feedDomain(chainID uint64, contract string, noChain, production bool) (d reputation.Domain, notice string, err error) {
	if chainID != 0 || contract != "" {
		if noChain {
			return d, "", errors.New("-feed-no-chain cannot be combined with -chain-id and -feed-contract")
		}
		if chainID == 0 || contract == "" {
			return d, "", errors.New("-chain-id and -feed-contract go together: reports verify on chain only under both")
		}
		addr, err := ethcrypto.ParseAddress(contract)
		if err != nil {
			return d, "", fmt.Errorf("-feed-contract: %w", err)
		}
		if addr.IsZero() {
			return d, "", errors.New("-feed-contract: the zero address is no contract")
		}
		return reputation.NewDomain(chainID, addr), "", nil
	}
	if production && !noChain {
		return d, "", errNoChain
	}
	return reputation.NewDomain(0, ethcrypto.Address{}), "oracled: NOTE: epoch reports are signed for no chain (chain id 0, contract 0x0): no feed contract accepts them; set -chain-id and -feed-contract for reports meant for a chain", nil
}

// clusterIDFor returns the cluster id nodes' signed requests must name:
// -cluster-id, required on a member with TLS (a production cluster needs
// its own, or requests signed for one cluster would be good for another);
// without TLS it defaults to oracle.DefaultClusterID.
func clusterIDFor(flag string, production bool) (string, error) {
	switch {
	case flag != "":
		if len(flag) > 128 {
			return "", errors.New("-cluster-id: at most 128 bytes")
		}
		return flag, nil
	case production:
		return "", errors.New("set -cluster-id: the id of this cluster, the same on every member, which nodes' signed requests name so that they are good for this cluster only")
	}
	return oracle.DefaultClusterID, nil
}

// verifyRaftPeer admits a Raft connection only from a certificate that
// names a member (its common name is a member id).
func verifyRaftPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return membertls.ErrNoMemberID
	}
	_, err := membertls.MemberID(cs.PeerCertificates[0])
	return err
}
