package oracle

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// addSignedRow puts member id's row, signed by key, into the member table
// through the leader l, as the member itself would.
func addSignedRow(t *testing.T, l *Member, id string, key *ethcrypto.PrivateKey) *truegpuv1.SetMemberCommand {
	t.Helper()
	a := key.Address()
	row := &truegpuv1.SetMemberCommand{Id: id, SignerAddress: a[:], GrpcAddress: id + ":9090", RaftAddress: id + ":7000", Seq: 1}
	if err := fsm.SignMemberRow(row, key); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Propose(context.Background(), &truegpuv1.Command{Body: &truegpuv1.Command_SetMember{SetMember: row}}); err != nil {
		t.Fatalf("member %s's own row: %v", id, err)
	}
	return row
}

func memberRow(t *testing.T, m *Member, id string) *truegpuv1.SetMemberCommand {
	t.Helper()
	members, err := m.fsm.Members()
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range members {
		if mem.Id == id {
			return mem
		}
	}
	return nil
}

// TestAnonymousCannotRewriteSigner: on a member without client
// authentication (a loopback development cluster), an anonymous caller
// still cannot move a member's row to a signer of its own, nor complete a
// report with its own signature: rows and report signatures are checked
// against the members' signer keys.
func TestAnonymousCannotRewriteSigner(t *testing.T) {
	c := newCluster(t, 1, nil)
	l := c.leader(5 * time.Second)
	ctx := context.Background()
	keyB := ethcrypto.KeyFromSeed([]byte("member b"))
	want := addSignedRow(t, l, "b", keyB)
	attacker := ethcrypto.KeyFromSeed([]byte("attacker"))
	admin := &adminService{m: l}
	voters := len(l.raft.GetConfiguration().Configuration().Servers)

	// The attack of the review: JoinMember rewriting b's signer.
	plain := &truegpuv1.JoinMemberRequest{Id: "b", RaftAddress: "b:7000", SignerAddress: attacker.Address().String()}
	if _, err := admin.JoinMember(ctx, plain); err == nil {
		t.Fatal("an unsigned row rewrote member b")
	}
	row := &truegpuv1.SetMemberCommand{Id: "b", RaftAddress: "b:7000", SignerAddress: addrBytes(attacker.Address()), Seq: 1 << 60}
	if err := fsm.SignMemberRow(row, attacker); err != nil {
		t.Fatal(err)
	}
	signed := &truegpuv1.JoinMemberRequest{Id: "b", RaftAddress: "b:7000", SignerAddress: attacker.Address().String(), Seq: row.Seq, Signature: row.Signature}
	if _, err := admin.JoinMember(ctx, signed); err == nil {
		t.Fatal("a row signed by another key rewrote member b")
	}
	// Even proposed straight into the log, the row is refused in Apply.
	if _, err := l.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_SetMember{SetMember: row}}); err == nil {
		t.Fatal("the state machine applied a row moving b to another signer")
	}
	if got := memberRow(t, l, "b"); !proto.Equal(got, want) {
		t.Fatalf("b's row changed: %v", got)
	}
	if n := len(l.raft.GetConfiguration().Configuration().Servers); n != voters {
		t.Fatalf("refused joins changed the voters: %d, want %d", n, voters)
	}

	// A report signed by the attacker alone is not a report.
	if _, err := l.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: 1}}}); err != nil {
		t.Fatal(err)
	}
	es, err := l.fsm.Epoch(1)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := attacker.SignHash([32]byte(es.Report.Digest))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "attacker"} {
		_, err := (&memberService{m: l}).SubmitReportSignature(ctx, &truegpuv1.SubmitReportSignatureRequest{Epoch: 1,
			Signature: &truegpuv1.MemberSignature{MemberId: id, SignerAddress: attacker.Address().String(), Signature: sig[:]}})
		if err == nil {
			t.Fatalf("the attacker's signature as member %q was accepted", id)
		}
	}
	if _, err := l.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_AddReportSignature{AddReportSignature: &truegpuv1.AddReportSignatureCommand{Epoch: 1,
		Signature: &truegpuv1.MemberSignature{MemberId: "b", SignerAddress: attacker.Address().String(), Signature: sig[:]}}}}); err == nil {
		t.Fatal("the state machine applied the attacker's report signature")
	}
	// m0 itself may have signed by now (its auditor runs); b has not, so
	// the report is short of its threshold of two.
	es, err = l.fsm.Epoch(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range es.Report.Signatures {
		if s.SignerAddress == attacker.Address().String() || s.MemberId != "m0" {
			t.Fatalf("report after the attack holds %v", s)
		}
	}
	if es.Report.Complete {
		t.Fatalf("report complete after the attack: %v", es.Report)
	}
}

func addrBytes(a ethcrypto.Address) []byte { return a[:] }

// TestMemberIdentityBound: with member authentication, member-only calls
// about member b are answered only for b's own certificate (or an
// operator's for membership changes); another member's certificate signed
// by the same CA is refused, and so is a caller without one.
func TestMemberIdentityBound(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.MemberAuth = true
		cfg.Operators = []string{"ops"}
	})
	l := c.leader(5 * time.Second)
	keyB := ethcrypto.KeyFromSeed([]byte("member b"))
	want := addSignedRow(t, l, "b", keyB)
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]tls.Certificate{}
	for _, id := range []string{"m0", "a", "b", "ops"} {
		if certs[id], err = ca.Issue(id, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	stls := devpki.ServerConfig(ca, certs["m0"]).Clone()
	stls.ClientAuth = tls.VerifyClientCertIfGiven
	stls.NextProtos = []string{"h2"}
	srv := NewGRPCServer(l, grpc.Creds(credentials.NewTLS(stls)), RequireMemberCert())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	dial := func(id string) grpc.ClientConnInterface {
		cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13}
		if id != "" {
			cfg.Certificates = []tls.Certificate{certs[id]}
		}
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// b's row moved to a's signer, signed by a's key: a valid row in
	// form, so only the caller's identity can refuse it here.
	keyA := ethcrypto.KeyFromSeed([]byte("member a"))
	row := &truegpuv1.SetMemberCommand{Id: "b", RaftAddress: "evil:7000", SignerAddress: addrBytes(keyA.Address()), Seq: 2}
	if err := fsm.SignMemberRow(row, keyA); err != nil {
		t.Fatal(err)
	}
	rewrite := &truegpuv1.JoinMemberRequest{Id: "b", RaftAddress: row.RaftAddress, SignerAddress: keyA.Address().String(), Seq: row.Seq, Signature: row.Signature}
	sig := &truegpuv1.SubmitReportSignatureRequest{Epoch: 1, Signature: &truegpuv1.MemberSignature{MemberId: "b", SignerAddress: keyA.Address().String(), Signature: make([]byte, 65)}}
	for _, caller := range []string{"", "a"} {
		cc := dial(caller)
		admin := truegpuv1.NewAdminServiceClient(cc)
		if _, err := admin.JoinMember(ctx, rewrite); status.Code(err) != codes.PermissionDenied {
			t.Errorf("JoinMember of b from %q: %v, want PermissionDenied", caller, err)
		}
		if _, err := admin.RemoveMember(ctx, &truegpuv1.RemoveMemberRequest{Id: "b"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("RemoveMember of b from %q: %v, want PermissionDenied", caller, err)
		}
		if _, err := truegpuv1.NewMemberServiceClient(cc).SubmitReportSignature(ctx, sig); status.Code(err) != codes.PermissionDenied {
			t.Errorf("SubmitReportSignature as b from %q: %v, want PermissionDenied", caller, err)
		}
	}
	// Members do not forward member-only calls, so a member cannot pass
	// one off as forwarded for another caller.
	fwd := metadataContext(ctx, forwardedKey, "1", "x-truegpu-forwarded-for", "b")
	for _, caller := range []string{"", "a"} {
		if _, err := truegpuv1.NewAdminServiceClient(dial(caller)).RemoveMember(fwd, &truegpuv1.RemoveMemberRequest{Id: "b"}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("RemoveMember of b marked as forwarded, from %q: %v, want PermissionDenied", caller, err)
		}
	}
	if got := memberRow(t, l, "b"); !proto.Equal(got, want) {
		t.Fatalf("b's row changed: %v", got)
	}
	// b itself and an operator get past the identity check (the handler
	// then answers on its own terms).
	if _, err := truegpuv1.NewMemberServiceClient(dial("b")).SubmitReportSignature(ctx, sig); status.Code(err) == codes.PermissionDenied {
		t.Errorf("SubmitReportSignature from b's certificate: %v", err)
	}
	if _, err := truegpuv1.NewAdminServiceClient(dial("ops")).RemoveMember(ctx, &truegpuv1.RemoveMemberRequest{Id: "nobody"}); status.Code(err) == codes.PermissionDenied {
		t.Errorf("RemoveMember from an operator: %v", err)
	}
}

func metadataContext(ctx context.Context, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// TestFollowerDoesNotForwardMemberCalls: with member authentication a
// follower answers member-only calls with "not the leader" instead of
// forwarding them, so the leader always sees the caller's own certificate.
func TestFollowerDoesNotForwardMemberCalls(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.MemberAuth = true })
	l := c.leader(10 * time.Second)
	ctx := context.Background()
	// A follower that momentarily knows no leader (an election on a loaded
	// machine) answers "no leader": also not forwarded.
	notLeader := func(err error) bool { return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) }
	for _, m := range c.members {
		if m == l {
			continue
		}
		if _, err := (&adminService{m: m}).RemoveMember(ctx, &truegpuv1.RemoveMemberRequest{Id: l.ID()}); !notLeader(err) {
			t.Errorf("RemoveMember on follower %s: %v, want ErrNotLeader", m.ID(), err)
		}
		if _, err := (&adminService{m: m}).JoinMember(ctx, &truegpuv1.JoinMemberRequest{Id: "x", RaftAddress: "x:1"}); !notLeader(err) {
			t.Errorf("JoinMember on follower %s: %v, want ErrNotLeader", m.ID(), err)
		}
	}
	if n := len(l.raft.GetConfiguration().Configuration().Servers); n != 3 {
		t.Fatalf("%d servers, want 3", n)
	}
}
