package fsm

import (
	"errors"
	"testing"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func memberCmd(row *truegpuv1.SetMemberCommand) *truegpuv1.Command {
	return &truegpuv1.Command{Version: 1, LeaderTimeUnixMs: 1000, Body: &truegpuv1.Command_SetMember{SetMember: row}}
}

func signedRow(t *testing.T, id string, key *ethcrypto.PrivateKey, seq uint64, grpcAddr string) *truegpuv1.SetMemberCommand {
	t.Helper()
	a := key.Address()
	row := &truegpuv1.SetMemberCommand{Id: id, SignerAddress: a[:], GrpcAddress: grpcAddr, RaftAddress: "10.0.0.1:7000", Seq: seq}
	if err := SignMemberRow(row, key); err != nil {
		t.Fatal(err)
	}
	return row
}

// TestMemberRowsBound: a member row is applied only when signed by the
// row's own signer; nobody, member or not, can move another member's row to
// a signer of their own, reuse another member's signer, or roll a row back.
func TestMemberRowsBound(t *testing.T) {
	f := openFSM(t)
	keyA := ethcrypto.KeyFromSeed([]byte("member a"))
	keyB := ethcrypto.KeyFromSeed([]byte("member b"))
	attacker := ethcrypto.KeyFromSeed([]byte("attacker"))
	for _, row := range []*truegpuv1.SetMemberCommand{signedRow(t, "a", keyA, 10, "a:1"), signedRow(t, "b", keyB, 10, "b:1")} {
		if err := apply1(t, f, memberCmd(row)); err != nil {
			t.Fatalf("member %s's own row: %v", row.Id, err)
		}
	}
	before := hashExceptApplied(t, f)
	bAddr := keyB.Address()
	unsigned := &truegpuv1.SetMemberCommand{Id: "b", SignerAddress: bAddr[:], GrpcAddress: "evil:1", Seq: 11}
	forged := signedRow(t, "b", keyA, 11, "evil:1") // A signs B's row
	forged.SignerAddress = bAddr[:]
	tests := []struct {
		name string
		row  *truegpuv1.SetMemberCommand
		want error
	}{
		{"unsigned row (anonymous rewrite of b's addresses)", unsigned, ErrBadSignature},
		{"a signs b's row", forged, ErrBadSignature},
		{"attacker moves b to its own signer", signedRow(t, "b", attacker, 11, "evil:1"), ErrConflict},
		{"a moves b to a's signer", signedRow(t, "b", keyA, 11, "evil:1"), ErrConflict},
		{"new member reuses a's signer", signedRow(t, "c", keyA, 1, "c:1"), ErrConflict},
		{"b's own row replayed", signedRow(t, "b", keyB, 10, "b:0"), ErrConflict},
		{"b's row with a lower seq", signedRow(t, "b", keyB, 9, "b:0"), ErrConflict},
		{"no signer", &truegpuv1.SetMemberCommand{Id: "d", Seq: 1}, ErrInvalidCommand},
		{"short signature", &truegpuv1.SetMemberCommand{Id: "d", SignerAddress: bAddr[:], Seq: 1, Signature: []byte{1}}, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := apply1(t, f, memberCmd(tc.row)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if hashExceptApplied(t, f) != before {
		t.Fatal("refused member rows changed the state")
	}
	// b updates its own row with a newer seq.
	if err := apply1(t, f, memberCmd(signedRow(t, "b", keyB, 12, "b:2"))); err != nil {
		t.Fatalf("b's newer row: %v", err)
	}
	members, err := f.Members()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.Id == "b" && (m.GrpcAddress != "b:2" || ethcrypto.Address(m.SignerAddress) != bAddr) {
			t.Fatalf("b's row = %v", m)
		}
	}
}
